"""WeChat's message encryption ("safe mode", 安全模式), without the network.

An Official Account in safe mode sends `<xml><ToUserName/><Encrypt/></xml>` with
`msg_signature = sha1(sorted([token, timestamp, nonce, Encrypt]))` in the query. Encrypt is
base64 of AES-256-CBC over `16 random bytes | len(xml) as 4 bytes big-endian | xml | AppID`,
padded PKCS#7 to 32-byte blocks, with key = base64(EncodingAESKey + "=") and IV = key[:16].
The AppID at the end says which account the message is for: it must be ours.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from adapters.http import same, sha1_sorted

KEY_LENGTH = 43  # characters of an EncodingAESKey
PAD_BLOCK = 32  # WeChat pads to 32 bytes, not to AES's 16
RANDOM_PREFIX = 16


class CryptoError(Exception):
    """The ciphertext cannot be opened or is not for this account."""


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey; ValueError says what is wrong."""
    text = encoding_aes_key.strip()
    if len(text) != KEY_LENGTH:
        raise ValueError(f"must be the {KEY_LENGTH} characters shown as EncodingAESKey")
    try:
        key = base64.b64decode(text + "=", validate=True)
    except binascii.Error:
        raise ValueError("must be the EncodingAESKey: letters and digits only") from None
    if len(key) != 32:
        raise ValueError("must be the EncodingAESKey: it does not decode to 32 bytes")
    return key


class WeChatCrypto:
    """Signs, opens and seals the messages of one account."""

    def __init__(self, token: str, encoding_aes_key: str, app_id: str) -> None:
        self._token = token
        self._key = aes_key(encoding_aes_key)
        self.app_id = app_id

    def signature(self, timestamp: str, nonce: str, encrypted: str) -> str:
        return sha1_sorted(self._token, timestamp, nonce, encrypted)

    def check_signature(self, signature: str, timestamp: str, nonce: str, encrypted: str) -> bool:
        return same(signature.strip().lower(), self.signature(timestamp, nonce, encrypted))

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    def decrypt(self, encrypted: str) -> bytes:
        """The message inside `encrypted` (base64 text); CryptoError when it is not ours."""
        try:
            data = base64.b64decode(encrypted.strip(), validate=True)
        except (binascii.Error, ValueError):  # ValueError: a character outside ASCII
            raise CryptoError("Encrypt is not base64") from None
        if not data or len(data) % 16:
            raise CryptoError("Encrypt is not a whole number of AES blocks")
        decryptor = self._cipher().decryptor()
        padded = decryptor.update(data) + decryptor.finalize()
        pad = padded[-1]
        if not 1 <= pad <= PAD_BLOCK or padded[-pad:] != bytes([pad]) * pad:
            raise CryptoError("the padding is wrong: was it encrypted with another EncodingAESKey?")
        plain = padded[:-pad]
        if len(plain) < RANDOM_PREFIX + 4:
            raise CryptoError("the plaintext is too short")
        (length,) = struct.unpack(">I", plain[RANDOM_PREFIX : RANDOM_PREFIX + 4])
        start = RANDOM_PREFIX + 4
        if start + length > len(plain):
            raise CryptoError("the declared length runs past the plaintext")
        app_id = plain[start + length :].decode("utf-8", "replace")
        if not same(app_id, self.app_id):
            raise CryptoError(f"the message is for AppID {app_id!r}, not this account's")
        return plain[start : start + length]

    def encrypt(self, message: bytes, random: bytes | None = None) -> str:
        """`message` sealed for WeChat, as base64 text (`random`: 16 bytes, for test vectors)."""
        prefix = os.urandom(RANDOM_PREFIX) if random is None else random
        if len(prefix) != RANDOM_PREFIX:
            raise ValueError(f"the random prefix must be {RANDOM_PREFIX} bytes")
        plain = prefix + struct.pack(">I", len(message)) + message + self.app_id.encode()
        pad = PAD_BLOCK - len(plain) % PAD_BLOCK
        encryptor = self._cipher().encryptor()
        sealed = encryptor.update(plain + bytes([pad]) * pad) + encryptor.finalize()
        return base64.b64encode(sealed).decode("ascii")

    def encrypted_reply(
        self, xml: str, nonce: str, timestamp: str, random: bytes | None = None
    ) -> str:
        """A passive reply in safe mode: the reply XML sealed, signed, in WeChat's envelope."""
        encrypted = self.encrypt(xml.encode("utf-8"), random)
        signature = self.signature(timestamp, nonce, encrypted)
        return (
            "<xml>\n"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt>\n"
            f"<MsgSignature><![CDATA[{signature}]]></MsgSignature>\n"
            f"<TimeStamp>{timestamp}</TimeStamp>\n"
            f"<Nonce><![CDATA[{nonce}]]></Nonce>\n"
            "</xml>"
        )
