"""The fake WeChat Pay's keys and crypto: the dev key set made once under var/wechatpay-dev/,
RSA-SHA256 signatures both ways, and AES-256-GCM callback resources (API v3). Shared by the
fake server (fakes/wechatpay.py) and the tests that forge or check what it sends."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

DEV_KEY_DIR = Path(__file__).resolve().parents[1] / "var" / "wechatpay-dev"  # git-ignored
CALLBACK_EVENT = "MCHTRANSFER.BILL.FINISHED"
CALLBACK_ASSOCIATED_DATA = "mch_payment"
CHINA = timezone(timedelta(hours=8))  # WeChat Pay's days and timestamps are Beijing time


# --- keys --------------------------------------------------------------------------------


def new_private_key_pem() -> bytes:
    """A fresh RSA 2048 private key, PKCS#8 PEM (like a merchant's apiclient_key.pem)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_private_key(path: str | os.PathLike) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} is not an RSA private key")
    return key


def load_public_key(path: str | os.PathLike) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(Path(path).read_bytes())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError(f"{path} is not an RSA public key")
    return key


def public_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> bytes:
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _fingerprint(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> bytes:
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).digest()


def cert_serial_for(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    """A dev stand-in for a merchant API certificate's serial number (40 hex digits)."""
    return _fingerprint(key)[:20].hex().upper()


def public_key_id_for(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    """A dev stand-in for the WeChat Pay public key's id (PUB_KEY_ID_ and digits)."""
    return "PUB_KEY_ID_01" + str(int.from_bytes(_fingerprint(key)[:16], "big") % 10**30).zfill(30)


def _write_once(path: Path, make: Callable[[], bytes], *, replace: bool = False) -> None:
    """Create `path` atomically: written whole to a temporary file beside it, then moved in.

    Private keys are linked in without clobbering (several processes may start at once: the
    first one's key wins and everybody reads that file); derived files, identical whoever
    writes them, are moved in with os.replace.
    """
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(make())
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o600)
        if replace:
            os.replace(temporary, path)
            return
        try:
            os.link(temporary, path)  # fails if another process got there first: keep theirs
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links
            if not path.exists():
                os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


@dataclass(frozen=True)
class DevKeys:
    """The development key set: the merchant's API key pair and WeChat Pay's platform key pair."""

    merchant_private_key_path: Path
    merchant_public_key_path: Path
    merchant_cert_serial: str
    platform_private_key_path: Path
    platform_public_key_path: Path
    platform_public_key_id: str


_dev_keys: dict[Path, DevKeys] = {}
_dev_keys_lock = threading.Lock()


def dev_keys(directory: str | os.PathLike = DEV_KEY_DIR) -> DevKeys:
    """The dev key set under var/wechatpay-dev/, made on first use (any process may be first).

    The fake and the client (when WECHATPAY_*_PATH are unset, dev and tests only) both use it,
    so worker processes started separately agree with a fake started in a test.
    """
    directory = Path(directory)
    with _dev_keys_lock:
        if directory in _dev_keys:
            return _dev_keys[directory]
        found = {}
        for who in ("merchant", "platform"):
            private_path = directory / f"{who}_private_key.pem"
            public_path = directory / f"{who}_public_key.pem"
            _write_once(private_path, new_private_key_pem)
            key = load_private_key(private_path)
            _write_once(public_path, lambda key=key: public_pem(key), replace=True)
            found[who] = (private_path, public_path, key)
        keys = DevKeys(
            merchant_private_key_path=found["merchant"][0],
            merchant_public_key_path=found["merchant"][1],
            merchant_cert_serial=cert_serial_for(found["merchant"][2]),
            platform_private_key_path=found["platform"][0],
            platform_public_key_path=found["platform"][1],
            platform_public_key_id=public_key_id_for(found["platform"][2]),
        )
        _dev_keys[directory] = keys
        return keys


# --- signatures and encryption -------------------------------------------------------------


def rsa_sign(private_key: rsa.RSAPrivateKey, message: bytes) -> str:
    """base64 of RSA-SHA256 PKCS#1 v1.5: how WeChat Pay API v3 signs both ways."""
    return base64.b64encode(private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verify(public_key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        public_key.verify(
            base64.b64decode(signature, validate=True), message, padding.PKCS1v15(), hashes.SHA256()
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def request_message(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"{method}\n{path}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"


def answer_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def _aes_key(api_key: str) -> bytes:
    key = api_key.encode()
    if len(key) != 32:
        raise ValueError("the APIv3 key must be 32 bytes")
    return key


def encrypt_resource(api_key: str, plaintext: bytes, *, nonce: str = "", associated_data: str = "") -> dict:
    """A callback's `resource`: AEAD_AES_256_GCM with the APIv3 key, tag appended, base64."""
    nonce = nonce or secrets.token_urlsafe(9)[:12]
    associated_data = associated_data or CALLBACK_ASSOCIATED_DATA
    sealed = AESGCM(_aes_key(api_key)).encrypt(nonce.encode(), plaintext, associated_data.encode())
    return {
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": base64.b64encode(sealed).decode(),
        "associated_data": associated_data,
        "original_type": "mch_payment",
        "nonce": nonce,
    }


def callback_body(api_key: str, data: dict, *, event_type: str = CALLBACK_EVENT) -> bytes:
    """A callback's body as WeChat Pay sends it: `data` encrypted into `resource`."""
    plaintext = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    envelope = {
        "id": str(uuid.uuid4()),
        "create_time": _iso(time.time()),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": "商家转账单据终态通知",
        "resource": encrypt_resource(api_key, plaintext),
    }
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()


def signature_headers(
    body: bytes,
    *,
    private_key: rsa.RSAPrivateKey | None = None,
    serial: str | None = None,
    timestamp: int | None = None,
    nonce: str = "",
) -> dict:
    """Wechatpay-Timestamp, -Nonce, -Signature and -Serial for an answer or a callback body.

    Signed with the platform private key (default: the dev one), for tests that forge or age one.
    """
    if private_key is None or serial is None:
        keys = dev_keys()
        private_key = private_key or load_private_key(keys.platform_private_key_path)
        serial = serial or keys.platform_public_key_id
    timestamp = int(time.time()) if timestamp is None else timestamp
    nonce = nonce or secrets.token_hex(16).upper()
    return {
        "Wechatpay-Timestamp": str(timestamp),
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": rsa_sign(private_key, answer_message(str(timestamp), nonce, body)),
        "Wechatpay-Serial": serial,
    }


def callback_headers(body: bytes, **kwargs) -> dict:
    """The headers a callback carries (see `signature_headers` for the options)."""
    return {"Content-Type": "application/json", **signature_headers(body, **kwargs)}


def signed_callback(api_key: str, data: dict, **kwargs) -> tuple[dict, bytes]:
    """(headers, body) of a genuine callback about `data` (the bill's fields), for tests:
    encrypted with the APIv3 key `api_key` (32 bytes), signed with the dev platform key."""
    body = callback_body(api_key, data)
    return callback_headers(body, **kwargs), body


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, CHINA).isoformat(timespec="seconds")
