#![no_main]

use ledgerline_protocol::ids::{DeviceId, FirmId, MemberId};
use ledgerline_protocol::keys::DeviceWrapSecret;
use ledgerline_protocol::recovery::{open_escrow, open_item, ItemContext, ItemKind, RecoveryKey};
use libfuzzer_sys::fuzz_target;

// What a relay (or a typist) hands a recovering device: a recovery key's text, a sealed
// backup item, an escrowed key. Each must be refused with an error, never a panic.
fuzz_target!(|data: &[u8]| {
    let _ = RecoveryKey::parse(&String::from_utf8_lossy(data));
    let key = RecoveryKey::from_bytes([7; 32]);
    let ctx = ItemContext {
        firm: FirmId([1; 16]),
        member: MemberId([2; 16]),
        kind: ItemKind::RoomKey,
        id: b"session",
    };
    let _ = open_item(data, &key, &ctx);
    let secret = DeviceWrapSecret::from_bytes([9; 32]);
    let _ = open_escrow(data, &secret, FirmId([1; 16]), MemberId([2; 16]), DeviceId([3; 16]));
});
