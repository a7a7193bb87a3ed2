//! Phone side of the handshake.

use super::HandshakeError;
use super::frames::{
    self, Action, AuthBody, Challenge, Hello, PROTOCOL_VERSION, ResultBody, Sealed,
};
use super::keyschedule::{self, Direction, DirectionalKey};
use crate::certificate::ControllerCertificate;
use crate::id::Id;
use crate::keys::{CryptoError, PublicKey, Signature};
use crate::reason::Reason;
use crate::trust::TrustedKeys;
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey};
use ring::rand::SecureRandom;

/// The message a device key must sign to authorise this command on this session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignRequest {
    pub message: Vec<u8>,
    /// The verified door, for display and logs.
    pub controller: Id,
}

// One state per connection, never stored in bulk: the AES key schedules inline are fine.
#[allow(clippy::large_enum_variant)]
enum State {
    AwaitChallenge {
        hello: Vec<u8>,
        lock: Id,
        ephemeral: EphemeralPrivateKey,
    },
    AwaitSignature {
        tx: DirectionalKey,
        rx: DirectionalKey,
        command_id: Id,
    },
    AwaitResult {
        rx: DirectionalKey,
        command_id: Id,
    },
    Done,
}

/// Phone-side state machine. One per connection attempt.
pub struct Initiator {
    state: State,
}

impl std::fmt::Debug for Initiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self.state {
            State::AwaitChallenge { .. } => "AwaitChallenge",
            State::AwaitSignature { .. } => "AwaitSignature",
            State::AwaitResult { .. } => "AwaitResult",
            State::Done => "Done",
        };
        f.debug_struct("Initiator").field("state", &s).finish()
    }
}

impl Initiator {
    /// Creates a fresh ephemeral key and the HELLO frame.
    pub fn start(
        rng: &dyn SecureRandom,
        lock: Id,
        action: Action,
    ) -> Result<(Self, Vec<u8>), CryptoError> {
        Self::start_with_version(rng, lock, action, PROTOCOL_VERSION)
    }

    #[doc(hidden)] // tests use it to play an old or future phone
    pub fn start_with_version(
        rng: &dyn SecureRandom,
        lock: Id,
        action: Action,
        version: u8,
    ) -> Result<(Self, Vec<u8>), CryptoError> {
        let ephemeral = EphemeralPrivateKey::generate(&agreement::ECDH_P256, rng)
            .map_err(|_| CryptoError::Rng)?;
        let public = ephemeral
            .compute_public_key()
            .map_err(|_| CryptoError::Agreement)?;
        let phone_ephemeral = PublicKey::from_slice(public.as_ref())?.0;
        let hello = Hello {
            version,
            action: action as u8,
            lock,
            phone_ephemeral,
        }
        .encode();
        Ok((
            Self {
                state: State::AwaitChallenge {
                    hello: hello.clone(),
                    lock,
                    ephemeral,
                },
            },
            hello,
        ))
    }

    /// Verifies the door (certificate chain to a trusted org key, lock coverage, signature over
    /// the transcript), derives session keys and returns what the device key must sign.
    /// `now` is the phone's clock in unix seconds; `command_id` stays the same across retries.
    pub fn on_challenge(
        &mut self,
        frame: &[u8],
        trusted: &TrustedKeys,
        now: u64,
        command_id: Id,
    ) -> Result<SignRequest, HandshakeError> {
        let State::AwaitChallenge {
            hello,
            lock,
            ephemeral,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(Reason::UnexpectedMessage.into());
        };
        if frame.first() == Some(&frames::ERROR) {
            return Err(frames::decode_error(frame)?.into());
        }
        let challenge = Challenge::decode(frame)?;
        if challenge.version != PROTOCOL_VERSION {
            return Err(Reason::UnsupportedVersion.into());
        }
        let cert = ControllerCertificate::verify_for(&challenge.certificate, trusted, lock, now)?;
        let th1 = keyschedule::transcript_hash(&[&hello, &challenge.encode_unsigned()]);
        let door_sig = Signature(challenge.signature);
        if !cert
            .public_key
            .verify(&keyschedule::door_signed_message(&th1), &door_sig)
        {
            return Err(Reason::BadDoorSignature.into());
        }
        let th2 = keyschedule::transcript_hash(&[&hello, frame]);
        let peer = UnparsedPublicKey::new(&agreement::ECDH_P256, challenge.door_ephemeral);
        let keys = agreement::agree_ephemeral(ephemeral, &peer, |secret| {
            keyschedule::derive_keys(secret, &th2)
        })
        .map_err(|_| HandshakeError::Rejected(Reason::MalformedFrame))??;
        let message = keyschedule::device_signed_message(&th2, &command_id);
        self.state = State::AwaitSignature {
            tx: DirectionalKey::new(&keys.phone_to_door, Direction::PhoneToDoor),
            rx: DirectionalKey::new(&keys.door_to_phone, Direction::DoorToPhone),
            command_id,
        };
        Ok(SignRequest {
            message,
            controller: cert.controller,
        })
    }

    /// Seals the credential, command id and device signature into the AUTH frame.
    pub fn auth_frame(
        &mut self,
        credential: &[u8],
        device_signature: &Signature,
    ) -> Result<Vec<u8>, HandshakeError> {
        let State::AwaitSignature {
            mut tx,
            rx,
            command_id,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(Reason::UnexpectedMessage.into());
        };
        if credential.len() > crate::credential::MAX_CREDENTIAL_LEN {
            return Err(Reason::FrameTooLarge.into());
        }
        let body = AuthBody {
            command_id,
            device_signature: device_signature.0,
            credential: credential.to_vec(),
        };
        let (counter, ciphertext) = tx.seal(frames::AUTH, &body.encode())?;
        self.state = State::AwaitResult { rx, command_id };
        Ok(Sealed {
            frame_type: frames::AUTH,
            counter,
            ciphertext,
        }
        .encode())
    }

    /// Opens the door's verdict. A door ERROR frame at this point becomes its reason.
    pub fn on_result(&mut self, frame: &[u8]) -> Result<ResultBody, HandshakeError> {
        let State::AwaitResult { mut rx, command_id } =
            std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(Reason::UnexpectedMessage.into());
        };
        if frame.first() == Some(&frames::ERROR) {
            return Err(frames::decode_error(frame)?.into());
        }
        let sealed = Sealed::decode(frame, frames::RESULT)?;
        let plain = rx.open(frames::RESULT, sealed.counter, &sealed.ciphertext)?;
        let body = ResultBody::decode(&plain)?;
        if body.command_id != command_id {
            return Err(Reason::UnexpectedMessage.into());
        }
        Ok(body)
    }
}
