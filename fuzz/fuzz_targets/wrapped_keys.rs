#![no_main]

use libfuzzer_sys::fuzz_target;

use ledgerline_protocol::ids::{DeviceId, FileId, FirmId, MemberId, TeamId};
use ledgerline_protocol::keys::{DeviceWrapSecret, MemberKey};
use ledgerline_protocol::wrap::*;

fuzz_target!(|data: &[u8]| {
    let ctx = MemberKeyContext {
        firm: FirmId([0; 16]),
        member: MemberId([0; 16]),
        device: DeviceId([0; 16]),
        key_version: 0,
    };
    let _ = unwrap_member_key(data, &DeviceWrapSecret::from_bytes([1; 32]), &ctx);
    let e = EpochKeyContext {
        firm: FirmId([0; 16]),
        file: FileId([0; 16]),
        epoch: 1,
        holder: Holder::Member(MemberId([0; 16])),
        holder_key_version: 0,
    };
    let _ = unwrap_epoch_key(data, &MemberKey::from_bytes([2; 32]), &e);
    let t = TeamKeyContext {
        firm: FirmId([0; 16]),
        team: TeamId([0; 16]),
        team_key_version: 1,
        member: MemberId([0; 16]),
        member_key_version: 1,
    };
    let _ = unwrap_team_key(data, &MemberKey::from_bytes([4; 32]), &t);
    let c = EpochChainContext {
        firm: FirmId([0; 16]),
        file: FileId([0; 16]),
        epoch: 1,
    };
    let _ = unchain_epoch_key(
        data,
        &ledgerline_protocol::keys::EpochKey::from_bytes([3; 32]),
        &c,
    );
});
