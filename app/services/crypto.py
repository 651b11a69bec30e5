"""Symmetric encryption for values the app must read back (project secrets, queued webhook payloads).

Fernet with a key derived from SECRET_KEY by HKDF, one key per purpose: a leak of one kind of
ciphertext's key says nothing about another's. Rotating SECRET_KEY makes old ciphertexts unreadable.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

__all__ = ["InvalidToken", "decrypt", "encrypt"]


def _fernet(purpose: str) -> Fernet:
    secret = current_app.config["SECRET_KEY"].encode()
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"kiket {purpose}".encode()).derive(secret)
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(plaintext: str, purpose: str) -> str:
    """Encrypt `plaintext` under the key for `purpose`."""
    return _fernet(purpose).encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str, purpose: str) -> str:
    """Decrypt; raises `InvalidToken` when the key (SECRET_KEY) changed or the text was altered."""
    return _fernet(purpose).decrypt(ciphertext.encode()).decode()
