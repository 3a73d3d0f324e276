//! Every request message the gRPC port takes, decoded from random bytes as the server decodes it:
//! never a panic, and whatever decodes re-encodes to a message that decodes to the same value.
//! Bytes come plain random, and as random protobuf fields (right and wrong wire types, lengths
//! that lie, field numbers ours and not) so that decoding gets past the first tag.

use envoy_types::pb::envoy::service::auth::v3::CheckRequest;
use latchkey::grpc::pb;
use proptest::prelude::*;
use prost::Message;
use tonic_health::pb::HealthCheckRequest;

/// One protobuf field: a key (field number and wire type) and a payload of that wire type or not.
fn field() -> impl Strategy<Value = Vec<u8>> {
    let payload = prop_oneof![
        any::<u64>().prop_map(|v| varint(v).to_vec()),
        proptest::collection::vec(any::<u8>(), 0..40)
            .prop_map(|b| { [varint(b.len() as u64).as_slice(), &b].concat() }),
        (any::<u64>(), proptest::collection::vec(any::<u8>(), 0..20)).prop_map(|(lie, b)| [
            varint(lie).as_slice(),
            &b
        ]
        .concat()),
        any::<[u8; 8]>().prop_map(|b| b.to_vec()),
        any::<[u8; 4]>().prop_map(|b| b.to_vec()),
    ];
    (
        prop_oneof![1..16u64, any::<u32>().prop_map(u64::from)],
        0..8u64,
        payload,
    )
        .prop_map(|(number, wire, payload)| {
            [varint(number << 3 | wire).as_slice(), &payload].concat()
        })
}

/// Random bytes, random fields, or random fields wrapping random fields (nested messages).
fn body() -> impl Strategy<Value = Vec<u8>> {
    let fields = || proptest::collection::vec(field(), 0..8).prop_map(|f| f.concat());
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        fields(),
        (1..6u64, proptest::collection::vec(fields(), 1..4)).prop_map(|(number, inner)| {
            let inner = inner.concat();
            [
                varint(number << 3 | 2).as_slice(),
                &varint(inner.len() as u64),
                &inner,
            ]
            .concat()
        }),
    ]
}

fn varint(value: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    prost::encoding::encode_varint(value, &mut out);
    out
}

/// Decodes `bytes` as `M`; if they decode, the message survives a round trip unchanged.
fn decodes_cleanly<M: Message + Default + PartialEq>(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(message) = M::decode(bytes) {
        let again = M::decode(message.encode_to_vec().as_slice());
        prop_assert!(again.as_ref() == Ok(&message), "{bytes:02x?}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn authservice_requests_decode_from_any_bytes_without_panicking(bytes in body()) {
        decodes_cleanly::<pb::LoginRequest>(&bytes)?;
        decodes_cleanly::<pb::RefreshRequest>(&bytes)?;
        decodes_cleanly::<pb::RevokeRequest>(&bytes)?;
        decodes_cleanly::<pb::IntrospectRequest>(&bytes)?;
        decodes_cleanly::<pb::LogoutAllRequest>(&bytes)?;
        decodes_cleanly::<pb::ListSessionsRequest>(&bytes)?;
        decodes_cleanly::<pb::GetJwksRequest>(&bytes)?;
        decodes_cleanly::<pb::WatchRevocationsRequest>(&bytes)?;
    }

    #[test]
    fn health_and_ext_authz_requests_decode_from_any_bytes_without_panicking(bytes in body()) {
        decodes_cleanly::<HealthCheckRequest>(&bytes)?;
        decodes_cleanly::<CheckRequest>(&bytes)?;
    }

    /// Whatever the fields hold, a message built from them comes back as it was sent.
    #[test]
    fn a_login_request_of_any_fields_round_trips(
        username in any::<String>(),
        password in any::<String>(),
        scopes in proptest::collection::vec(any::<String>(), 0..4),
        client_id in any::<String>(),
        device in any::<String>(),
    ) {
        let request = pb::LoginRequest { username, password, scopes, client_id, device };
        let bytes = request.encode_to_vec();
        prop_assert_eq!(pb::LoginRequest::decode(bytes.as_slice()), Ok(request));
    }
}
