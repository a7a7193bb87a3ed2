//! Handshake CPU time per side, bytes on air, GATT round trips and a modelled tap-to-relay
//! time. Run: `cargo bench -p keyway-protocol --bench handshake`.
//! Targets (docs/protocol.md, brief §5): ≤ 1 ms CPU per side, ≤ 2 round trips after connect,
//! ≤ 150 ms modelled tap-to-relay at 20 ms advertising / 15 ms connection interval.

use criterion::{Criterion, criterion_group};
use keyway_protocol::certificate::ControllerCertificate;
use keyway_protocol::credential::{Credential, Holder, HolderKind, ScopeEntry};
use keyway_protocol::gatt;
use keyway_protocol::handshake::{
    Action, AuthInput, DoorConfig, DoorIdentity, DoorMemory, Initiator, LockPolicy, Responder,
};
use keyway_protocol::time::TimeBounds;
use keyway_protocol::{Id, SigningKey, TrustedKeys};
use ring::rand::SystemRandom;
use std::time::{Duration, Instant};

const NOW: u64 = 1_804_154_400;
const LOCK: Id = Id([0x10; 16]);

struct Setup {
    rng: SystemRandom,
    device: SigningKey,
    identity: DoorIdentity,
    config: DoorConfig,
    credential: Vec<u8>,
    trusted: TrustedKeys,
}

fn setup() -> Setup {
    let rng = SystemRandom::new();
    let org = Id([0x30; 16]);
    let org_key = SigningKey::generate(&rng).unwrap().0;
    let device = SigningKey::generate(&rng).unwrap().0;
    let ctl = SigningKey::generate(&rng).unwrap().0;
    let certificate = ControllerCertificate {
        org,
        controller: Id([0x40; 16]),
        public_key: ctl.public_key(),
        locks: vec![LOCK],
        not_before: 0,
        not_after: u64::MAX,
    }
    .sign(&org_key, &rng)
    .unwrap();
    let credential = Credential {
        id: Id([0x50; 16]),
        org,
        holder: Holder {
            kind: HolderKind::User,
            id: Id([0x60; 16]),
        },
        device_key: device.public_key(),
        scope: vec![ScopeEntry::Lock(LOCK)],
        not_before: NOW - 10,
        not_after: NOW + 86_400,
        max_uses: None,
        schedule: None,
    }
    .sign(&org_key, &rng)
    .unwrap();
    let trusted = TrustedKeys::single(org, org_key.public_key());
    let policy = LockPolicy {
        id: LOCK,
        place: None,
        walk_up: true,
        walk_up_min_rssi: -70,
        lockdown: false,
        relay_ms: 3000,
    };
    let config = DoorConfig::new(org, trusted.clone(), vec![policy]);
    Setup {
        rng,
        device,
        identity: DoorIdentity {
            key: ctl,
            certificate,
        },
        config,
        credential,
        trusted,
    }
}

/// One full exchange; returns (phone CPU, door CPU, frames).
fn exchange(s: &Setup, cmd: u8) -> (Duration, Duration, [Vec<u8>; 4]) {
    let input = AuthInput {
        config: &s.config,
        time: Some(TimeBounds {
            earliest: NOW,
            latest: NOW,
        }),
        mono_ms: 0,
        rssi: None,
        range_m: None,
    };
    let t = Instant::now();
    let (mut phone, hello) = Initiator::start(&s.rng, LOCK, Action::Unlock).unwrap();
    let mut phone_t = t.elapsed();

    let t = Instant::now();
    let mut door = Responder::new();
    let challenge = door
        .on_hello(&hello, &s.identity, &s.config, &s.rng, 0)
        .unwrap();
    let mut door_t = t.elapsed();

    let t = Instant::now();
    let req = phone
        .on_challenge(&challenge, &s.trusted, NOW, Id([cmd; 16]))
        .unwrap();
    let sig = s.device.sign(&s.rng, &req.message).unwrap();
    let auth = phone.auth_frame(&s.credential, &sig).unwrap();
    phone_t += t.elapsed();

    let t = Instant::now();
    let decision = door.on_auth(&auth, &input, &DoorMemory::default()).unwrap();
    let result = door.result_frame(&decision, 1).unwrap();
    door_t += t.elapsed();

    let t = Instant::now();
    assert!(phone.on_result(&result).unwrap().granted);
    phone_t += t.elapsed();
    (phone_t, door_t, [hello, challenge, auth, result])
}

fn print_summary(s: &Setup) {
    let runs = 200;
    let (mut p, mut d) = (Vec::new(), Vec::new());
    let mut frames = None;
    for i in 0..runs {
        let (pt, dt, f) = exchange(s, i as u8);
        p.push(pt);
        d.push(dt);
        frames = Some(f);
    }
    p.sort();
    d.sort();
    let frames = frames.unwrap();
    let sizes: Vec<usize> = frames.iter().map(Vec::len).collect();
    println!("== keyway BLE handshake ({runs} exchanges, this machine) ==");
    println!(
        "phone CPU per unlock: median {:?}, p99 {:?} (target <= 1 ms)",
        p[runs / 2],
        p[runs * 99 / 100]
    );
    println!(
        "door  CPU per unlock: median {:?}, p99 {:?} (target <= 1 ms)",
        d[runs / 2],
        d[runs * 99 / 100]
    );
    println!(
        "message bytes: HELLO {} CHALLENGE {} AUTH {} RESULT {} = {} total",
        sizes[0],
        sizes[1],
        sizes[2],
        sizes[3],
        sizes.iter().sum::<usize>()
    );
    println!("GATT round trips after connect: 2 (HELLO->CHALLENGE, AUTH->RESULT)");
    for mtu in [23usize, 185, 247] {
        let counts: Vec<usize> = frames
            .iter()
            .map(|f| gatt::fragment(f, mtu).unwrap().len())
            .collect();
        let on_air: usize = frames
            .iter()
            .map(|f| {
                gatt::fragment(f, mtu)
                    .unwrap()
                    .iter()
                    .map(|x| x.len() + 3)
                    .sum::<usize>()
            })
            .sum();
        println!("ATT MTU {mtu:>3}: fragments {counts:?}, ATT bytes on air {on_air}");
    }
    // Model at 20 ms advertising / 15 ms connection interval, MTU 185, 2M PHY with data length
    // extension (a CHALLENGE's 3 notifications fit one connection event). Worst case per step.
    let ci = 15.0;
    let cpu_ms = (p[runs / 2] + d[runs / 2]).as_secs_f64() * 1e3;
    let steps = [
        ("advertisement heard (<= 1 adv interval)", 20.0),
        ("connect request -> first connection event", ci),
        ("MTU exchange (1 round trip)", 2.0 * ci),
        ("HELLO -> CHALLENGE (1 round trip)", 2.0 * ci),
        ("AUTH -> RESULT (1 round trip)", 2.0 * ci),
        ("CPU both sides (measured median)", cpu_ms),
    ];
    let total: f64 = steps.iter().map(|s| s.1).sum();
    println!("modelled tap-to-relay (cached GATT handles, 20 ms adv, 15 ms CI):");
    for (what, ms) in steps {
        println!("  {what:<45} {ms:>6.1} ms");
    }
    println!("  {:<45} {:>6.1} ms (target <= 150 ms)", "total", total);
}

fn bench(c: &mut Criterion) {
    let s = setup();
    print_summary(&s);
    let mut g = c.benchmark_group("handshake");
    g.bench_function("phone_side", |b| {
        b.iter_custom(|iters| (0..iters).map(|i| exchange(&s, i as u8).0).sum())
    });
    g.bench_function("door_side", |b| {
        b.iter_custom(|iters| (0..iters).map(|i| exchange(&s, i as u8).1).sum())
    });
    g.finish();
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
