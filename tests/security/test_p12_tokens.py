"""Promise 12: tokens with ``alg=none``, HS/RS confusion, a bad signature, expired, or the
wrong ``aud``/``iss`` → 401; a revoked API key → 401 (OWASP API2:2023 broken authentication).
"""

from __future__ import annotations

import httpx

from roadmap_api.settings import ApiSettings
from tests.support import jwt_forge
from tests.support.capture import Capture
from tests.support.inproc import API, new_user
from tests.support.sentinels import SessionSecrets

ME = f"{API}/me"


async def test_p12_forged_expired_and_misaddressed_tokens_and_revoked_api_keys_401(
    api: httpx.AsyncClient, capture: Capture, session_secrets: SessionSecrets
) -> None:
    user = await new_user(api, capture.secrets)
    settings = ApiSettings(jwt_secret_key=session_secrets.jwt_secret_key)
    secret = session_secrets.jwt_secret_key

    def claims(**changes: object) -> dict[str, object]:
        base = jwt_forge.claims_for(
            user.id, issuer=settings.jwt_issuer, audience=settings.jwt_audience
        )
        return {**base, **changes}

    rsa = jwt_forge.RsaKey.generate()
    forged = {
        "alg none": jwt_forge.unsigned(claims()),
        "alg None": jwt_forge.unsigned(claims(), alg="None"),
        "HS256 keyed with an RSA public key": jwt_forge.hs256(claims(), rsa.public_pem()),
        "RS256": jwt_forge.rs256(claims(), rsa),
        "HS512 with the real secret": jwt_forge.hs256(claims(), secret, alg="HS512"),
        "bad signature": jwt_forge.tamper(jwt_forge.hs256(claims(), secret)),
        "wrong secret": jwt_forge.hs256(claims(), secret + "x"),
        "expired": jwt_forge.hs256(
            jwt_forge.claims_for(
                user.id,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                lifetime_s=60,
                issued_ago_s=3600,
            ),
            secret,
        ),
        "wrong audience": jwt_forge.hs256(claims(aud="someone-else"), secret),
        "wrong issuer": jwt_forge.hs256(claims(iss="someone-else"), secret),
        "no expiry": jwt_forge.hs256({k: v for k, v in claims().items() if k != "exp"}, secret),
        "not yet valid": jwt_forge.hs256(claims(nbf=claims()["iat"] + 3600), secret),  # type: ignore[operator]
        "garbage": "not-a-token",
    }
    capture.secrets.extend(forged.values())
    assert rsa.verify_rs256(
        *jwt_forge.signed_parts(forged["RS256"])
    )  # a genuinely valid RS256 token

    # The control: the same claims signed the way the API signs are accepted.
    genuine = jwt_forge.hs256(claims(), secret)
    capture.secrets.add(genuine)
    ok = await api.get(ME, headers={"Authorization": f"Bearer {genuine}"})
    assert ok.status_code == 200
    assert ok.json()["id"] == str(user.id)

    for name, token in forged.items():
        answer = await api.get(ME, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, (name, answer.status_code, answer.text)
        assert answer.headers["www-authenticate"].startswith("Bearer"), name
        assert token not in answer.text, name

    # API keys: work until revoked, then 401 at once.
    created = await api.post(f"{API}/me/api-keys", json={"name": "laptop"}, headers=user.headers)
    assert created.status_code == 201
    key, key_id = created.json()["key"], created.json()["id"]
    with_key = {"Authorization": f"Bearer {key}"}
    assert (await api.get(ME, headers=with_key)).status_code == 200
    revoked = await api.delete(f"{API}/me/api-keys/{key_id}", headers=user.headers)
    assert revoked.status_code == 204
    after = await api.get(ME, headers=with_key)
    assert after.status_code == 401, after.text
    assert (await api.get(f"{API}/roadmaps", headers=with_key)).status_code == 401
    guessed = await api.get(ME, headers={"Authorization": f"Bearer {key[:-4]}AAAA"})
    assert guessed.status_code == 401
