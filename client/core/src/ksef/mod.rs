//! KSeF intake (`../shared/ksef/`): invoices from Poland's national e-invoice system,
//! fetched and read on the client. This module grows with the KSeF issue; so far it holds
//! the KSeF number and its check.

pub mod api;
pub mod invoice;
pub mod number;
