//! Both ends in one process over real loopback TCP: a door registered on the hub, a SimPhone.

use keyway_protocol::advert::{Advertisement, FLAG_WALK_UP};
use keyway_protocol::certificate::ControllerCertificate;
use keyway_protocol::credential::{Credential, Holder, HolderKind, ScopeEntry};
use keyway_protocol::gatt::{self, Reassembler};
use keyway_protocol::handshake::{
    Action, AuthInput, DoorConfig, DoorIdentity, DoorMemory, LockPolicy, Responder,
};
use keyway_protocol::keys::DeviceSigner;
use keyway_protocol::time::TimeBounds;
use keyway_protocol::{CryptoError, Id, PublicKey, Signature, SigningKey, TrustedKeys};
use keyway_sim_radio::exchange::{self, UnlockRequest};
use keyway_sim_radio::{DoorLink, DoorSpec, HubConfig, Position, RadioHub, SimPhone};
use ring::rand::SystemRandom;
use std::time::Duration;

const NOW: u64 = 1_804_154_400;
const LOCK: Id = Id([0x10; 16]);
const ORG: Id = Id([0x30; 16]);

fn advert() -> Vec<u8> {
    Advertisement {
        lock_short_id: keyway_protocol::advert::lock_short_id(LOCK),
        tx_power: -59,
        proximity_code: 0x123456,
        flags: FLAG_WALK_UP,
    }
    .encode()
    .to_vec()
}

async fn hub_with_door(interval_ms: u64) -> (RadioHub, keyway_sim_radio::DoorRadio) {
    hub_with_door_in(HubConfig::default(), interval_ms).await
}

/// A hub with `cfg` and one door at the origin advertising every `interval_ms`.
async fn hub_with_door_in(
    cfg: HubConfig,
    interval_ms: u64,
) -> (RadioHub, keyway_sim_radio::DoorRadio) {
    let hub = RadioHub::bind("127.0.0.1:0", cfg).await.unwrap();
    let door = hub
        .add_door(DoorSpec {
            id: LOCK.to_string(),
            position: Position { x: 0.0, y: 0.0 },
            tx_power_at_1m: -59,
            advertising_interval_ms: Some(interval_ms),
            advertisement: advert(),
        })
        .unwrap();
    (hub, door)
}

async fn mean_rssi(phone: &SimPhone, n: usize) -> f64 {
    let mut rx = phone.adverts();
    let mut sum = 0.0;
    for _ in 0..n {
        let a = tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .unwrap()
            .unwrap();
        sum += a.rssi as f64;
    }
    sum / n as f64
}

#[tokio::test]
async fn adverts_carry_payload_and_rssi_falls_with_distance() {
    let (hub, _door) = hub_with_door(10).await;
    let phone = SimPhone::connect(hub.local_addr(), "alice").await.unwrap();
    phone.set_position(1.0, 0.0).await.unwrap();
    let a = phone
        .next_advert(Some(&LOCK.to_string()), Duration::from_secs(2))
        .await
        .unwrap();
    let decoded = a.advertisement.unwrap();
    assert_eq!(
        decoded.lock_short_id,
        keyway_protocol::advert::lock_short_id(LOCK)
    );
    assert!(decoded.walk_up());
    tokio::time::sleep(Duration::from_millis(30)).await;
    let near = mean_rssi(&phone, 40).await;
    phone.set_position(20.0, 0.0).await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let far = mean_rssi(&phone, 40).await;
    // Expected means: -59 at 1 m, -85 at 20 m (n = 2); sigma 4 dB over 40 samples.
    assert!((near - -59.0).abs() < 4.0, "near {near}");
    assert!((far - -85.0).abs() < 4.0, "far {far}");

    phone.set_scanning(false).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut rx = phone.adverts();
    assert!(
        tokio::time::timeout(Duration::from_millis(100), rx.recv())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_ranging_hub_ranges_scanning_phones_within_reach_only() {
    use keyway_sim_radio::hub::{RANGING_INTERVAL_MS, RANGING_REACH_M};
    let cfg = HubConfig {
        ranging_sigma_m: Some(0.1),
        ..HubConfig::default()
    };
    let (hub, _door) = hub_with_door_in(cfg, 20).await;
    let phone = SimPhone::connect(hub.local_addr(), "alice").await.unwrap();
    let mut ranges = phone.ranges();
    // Beyond reach: adverts, but no range.
    phone
        .set_position(RANGING_REACH_M + 2.0, 0.0)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    while ranges.try_recv().is_ok() {}
    phone
        .next_advert(None, Duration::from_secs(2))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(3 * RANGING_INTERVAL_MS)).await;
    assert!(ranges.try_recv().is_err(), "ranged beyond reach");
    // At 2 m: the true distance within the hub's noise, at most once per interval.
    phone.set_position(2.0, 0.0).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(2), ranges.recv())
        .await
        .unwrap()
        .unwrap();
    let mut seen = vec![first];
    while seen.len() < 5 {
        let r = tokio::time::timeout(Duration::from_secs(2), ranges.recv())
            .await
            .unwrap()
            .unwrap();
        seen.push(r);
    }
    for r in &seen {
        assert_eq!(r.door, LOCK.to_string());
        assert!((r.metres - 2.0).abs() < 0.5, "{r:?}");
    }
    for pair in seen.windows(2) {
        // Hub timestamps are whole ms; the 20 ms advertising tick sets the pace.
        assert!(
            pair[1].at_ms - pair[0].at_ms >= RANGING_INTERVAL_MS - 1,
            "{pair:?}"
        );
    }
    // A phone that stops scanning is no longer ranged.
    phone.set_scanning(false).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    while ranges.try_recv().is_ok() {}
    tokio::time::sleep(Duration::from_millis(3 * RANGING_INTERVAL_MS)).await;
    assert!(ranges.try_recv().is_err(), "ranged while not scanning");
}

#[tokio::test]
async fn a_hub_without_ranging_reports_no_range() {
    let (hub, _door) = hub_with_door(20).await;
    let phone = SimPhone::connect(hub.local_addr(), "alice").await.unwrap();
    let mut ranges = phone.ranges();
    phone.set_position(1.0, 0.0).await.unwrap();
    mean_rssi(&phone, 20).await;
    assert!(ranges.try_recv().is_err());
}

#[tokio::test]
async fn scripted_walk_moves_the_phone() {
    let (hub, _door) = hub_with_door(10).await;
    let phone = SimPhone::connect(hub.local_addr(), "walker").await.unwrap();
    phone
        .run_script(&[(0, 30.0, 0.0), (300, 30.0, 0.0), (600, 0.5, 0.0)])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let start = mean_rssi(&phone, 10).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let end = mean_rssi(&phone, 10).await;
    assert!(end > start + 20.0, "start {start} end {end}");
}

#[tokio::test]
async fn link_carries_fragments_both_ways_and_closes() {
    let (hub, mut door) = hub_with_door(100).await;
    let phone = SimPhone::connect(hub.local_addr(), "p").await.unwrap();
    phone.set_position(0.5, 0.0).await.unwrap();
    let mut link = phone.connect_door(&LOCK.to_string()).await.unwrap();
    let mut dl: DoorLink = door.accept().await.unwrap();
    assert_eq!(link.att_mtu(), 185);
    assert!(dl.rssi().unwrap() > -70);

    let msg: Vec<u8> = (0..500u16).map(|i| i as u8).collect();
    exchange::send_message(&link, &msg).await.unwrap();
    let mut r = Reassembler::new();
    let got = loop {
        let f = dl.next_write().await.unwrap();
        if let Some(m) = r.push(&f).unwrap() {
            break m;
        }
    };
    assert_eq!(got, msg);
    for f in gatt::fragment(&got, dl.att_mtu()).unwrap() {
        dl.notify(&f).await.unwrap();
    }
    let echoed = exchange::recv_message(&mut link, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(echoed, msg);

    // Oversized writes are refused by the hub, not delivered.
    link.write(&[0u8; 200]).await.unwrap();
    dl.close();
    assert_eq!(link.next_notification().await, None);
    assert!(dl.notify(&[1]).await.is_err());

    // Phone-side close: the door sees the end of writes.
    let link2 = phone.connect_door(&LOCK.to_string()).await.unwrap();
    let mut dl2 = door.accept().await.unwrap();
    link2.close().await;
    assert_eq!(dl2.next_write().await, None);
    assert!(
        phone
            .take_errors()
            .iter()
            .any(|e| e.contains("exceeds ATT MTU"))
    );
}

#[tokio::test]
async fn connect_fails_out_of_range_or_unknown_and_garbage_is_survived() {
    let (hub, _door) = hub_with_door(100).await;
    let phone = SimPhone::connect(hub.local_addr(), "p").await.unwrap();
    phone.set_position(5000.0, 0.0).await.unwrap();
    let err = phone.connect_door(&LOCK.to_string()).await.unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
    let err = phone.connect_door("nope").await.unwrap_err();
    assert!(err.to_string().contains("unknown door"), "{err}");
    phone.send_line("{not json".into()).await.unwrap();
    phone
        .send_line(r#"{"op":"write","link":99,"data":"00"}"#.into())
        .await
        .unwrap();
    phone.set_position(1.0, 0.0).await.unwrap();
    phone
        .next_advert(None, Duration::from_secs(2))
        .await
        .unwrap();
    let errors = phone.take_errors();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(hub.phone_count(), 1);
}

struct Device(SigningKey, SystemRandom);

impl DeviceSigner for Device {
    fn public_key(&self) -> PublicKey {
        self.0.public_key()
    }
    fn sign(&self, msg: &[u8]) -> Result<Signature, CryptoError> {
        self.0.sign(&self.1, msg)
    }
}

/// The door side of one connection: Responder over the DoorLink, like the controller does.
async fn serve_one(mut dl: DoorLink, identity: DoorIdentity, config: DoorConfig) {
    let rng = SystemRandom::new();
    let mut responder = Responder::new();
    let mut r = Reassembler::new();
    let mut step = 0;
    while let Some(frag) = dl.next_write().await {
        let Some(msg) = r.push(&frag).unwrap() else {
            continue;
        };
        let out = if step == 0 {
            responder
                .on_hello(&msg, &identity, &config, &rng, 1000)
                .unwrap()
        } else {
            let input = AuthInput {
                config: &config,
                time: Some(TimeBounds {
                    earliest: NOW,
                    latest: NOW,
                }),
                mono_ms: 1500,
                rssi: dl.rssi(),
                range_m: None,
            };
            let d = responder
                .on_auth(&msg, &input, &DoorMemory::default())
                .unwrap();
            responder.result_frame(&d, 1).unwrap()
        };
        step += 1;
        for f in gatt::fragment(&out, dl.att_mtu()).unwrap() {
            dl.notify(&f).await.unwrap();
        }
    }
}

#[tokio::test]
async fn whole_unlock_runs_over_the_hub() {
    let (hub, door) = hub_with_door(100).await;
    let elapsed = unlock_over(hub, door).await;
    println!("unlock over the hub without radio timing: {elapsed:?}");
}

/// Brief §5: modelled tap-to-relay time with 20 ms advertising and a 15 ms connection
/// interval (connect, two round trips, RESULT), target ≤ 150 ms.
#[tokio::test]
async fn modelled_tap_to_result_time_with_ble_timing() {
    let cfg = HubConfig {
        connection_interval_ms: 15,
        ..HubConfig::default()
    };
    let mut times = Vec::new();
    for _ in 0..5 {
        let (hub, door) = hub_with_door_in(cfg.clone(), 20).await;
        times.push(unlock_over(hub, door).await);
    }
    times.sort();
    let median = times[times.len() / 2];
    println!("modelled tap-to-RESULT (20 ms adv, 15 ms CI): median {median:?}, all {times:?}");
    // Generous bound so a loaded CI machine does not flake; the figure is what matters.
    assert!(median < Duration::from_millis(300), "{times:?}");
}

/// Connects a phone at 0.3 m and runs one walk-up unlock; returns tap-to-RESULT time.
async fn unlock_over(hub: RadioHub, mut door: keyway_sim_radio::DoorRadio) -> Duration {
    let rng = SystemRandom::new();
    let (org_key, _) = SigningKey::generate(&rng).unwrap();
    let (door_key, _) = SigningKey::generate(&rng).unwrap();
    let (device_key, _) = SigningKey::generate(&rng).unwrap();
    let certificate = ControllerCertificate {
        org: ORG,
        controller: Id([0x40; 16]),
        public_key: door_key.public_key(),
        locks: vec![LOCK],
        not_before: NOW - 10,
        not_after: NOW + 10_000,
    }
    .sign(&org_key, &rng)
    .unwrap();
    let trusted = TrustedKeys::single(ORG, org_key.public_key());
    let config = DoorConfig::new(
        ORG,
        trusted.clone(),
        vec![LockPolicy {
            id: LOCK,
            place: None,
            walk_up: true,
            walk_up_min_rssi: -70,
            lockdown: false,
            relay_ms: 3000,
        }],
    );
    let credential = Credential {
        id: Id([0x50; 16]),
        org: ORG,
        holder: Holder {
            kind: HolderKind::User,
            id: Id([0x60; 16]),
        },
        device_key: device_key.public_key(),
        scope: vec![ScopeEntry::Lock(LOCK)],
        not_before: NOW - 100,
        not_after: NOW + 100,
        max_uses: None,
        schedule: None,
    }
    .sign(&org_key, &rng)
    .unwrap();

    let phone = SimPhone::connect(hub.local_addr(), "p").await.unwrap();
    phone.set_position(0.3, 0.0).await.unwrap();
    let device = Device(device_key, SystemRandom::new());
    let tap = std::time::Instant::now();
    let mut link = phone.connect_door(&LOCK.to_string()).await.unwrap();
    let dl = door.accept().await.unwrap();
    let identity = DoorIdentity {
        key: door_key,
        certificate,
    };
    let server = tokio::spawn(serve_one(dl, identity, config));
    let result = exchange::unlock(
        &mut link,
        &rng,
        UnlockRequest {
            lock: LOCK,
            action: Action::WalkUp,
            trusted: &trusted,
            now_unix: NOW,
            command_id: Id([0x70; 16]),
            credential: &credential,
            signer: &device,
            timeout: Duration::from_secs(5),
        },
    )
    .await
    .unwrap();
    let elapsed = tap.elapsed();
    assert!(result.granted, "{result:?}");
    assert_eq!(result.relay_ms, 3000);
    link.close().await;
    server.await.unwrap();
    elapsed
}
