package dev.keyway.android

import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyInfo
import android.security.keystore.KeyProperties
import android.util.Log
import dev.keyway.shell.JcaKeyShell
import java.security.KeyFactory
import java.security.KeyPair
import java.security.KeyPairGenerator
import java.security.KeyStore
import java.security.ProviderException
import java.security.spec.ECGenParameterSpec

/**
 * The device key in the Android Keystore: P-256, sign-only, SHA-256, never exported. It lives
 * in the phone's secure hardware (TEE) where the phone has one, and in StrongBox (a separate
 * secure element) where that exists, tried first. The server binds the phone's credentials to
 * its public key; the door checks the signature over each handshake transcript.
 *
 * No user-authentication requirement: walk-up unlocks sign with the phone in a pocket.
 */
class KeystoreDeviceKey private constructor(
    /** What the core calls ([dev.keyway.core.KeyShell]). */
    val shell: JcaKeyShell,
    /** The private key is inside secure hardware (TEE or StrongBox). */
    val insideSecureHardware: Boolean,
) {
    companion object {
        private const val TAG = "KeywayKey"
        private const val PROVIDER = "AndroidKeyStore"
        private const val ALIAS = "keyway-device-key"

        /** Loads the device key, creating it on first use. Throws when the Keystore is unusable. */
        fun loadOrCreate(): KeystoreDeviceKey {
            val store = KeyStore.getInstance(PROVIDER).apply { load(null) }
            val keys = (store.getEntry(ALIAS, null) as? KeyStore.PrivateKeyEntry)
                ?.let { KeyPair(it.certificate.publicKey, it.privateKey) }
                ?: create()
            val info = KeyFactory.getInstance(keys.private.algorithm, PROVIDER)
                .getKeySpec(keys.private, KeyInfo::class.java)
            return KeystoreDeviceKey(JcaKeyShell(keys), info.isInsideSecureHardware)
        }

        private fun create(): KeyPair {
            val generator = KeyPairGenerator.getInstance(KeyProperties.KEY_ALGORITHM_EC, PROVIDER)
            return try {
                generator.initialize(spec(strongBox = true))
                generator.generateKeyPair()
            } catch (e: ProviderException) {
                // StrongBoxUnavailableException (a ProviderException): no secure element here.
                Log.i(TAG, "no StrongBox, using the Keystore's default (TEE where present)")
                generator.initialize(spec(strongBox = false))
                generator.generateKeyPair()
            }
        }

        private fun spec(strongBox: Boolean): KeyGenParameterSpec {
            val builder = KeyGenParameterSpec.Builder(ALIAS, KeyProperties.PURPOSE_SIGN)
                .setAlgorithmParameterSpec(ECGenParameterSpec("secp256r1"))
                .setDigests(KeyProperties.DIGEST_SHA256)
            if (strongBox) {
                // setIsStrongBoxBacked is API 28, newer than the android.jar (23) compiled
                // against here: call it where the phone has it.
                try {
                    builder.javaClass.getMethod("setIsStrongBoxBacked", Boolean::class.javaPrimitiveType)
                        .invoke(builder, true)
                } catch (_: NoSuchMethodException) {
                    Log.i(TAG, "Android < 9: no StrongBox option")
                }
            }
            return builder.build()
        }
    }
}
