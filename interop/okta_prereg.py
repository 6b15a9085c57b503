"""Fidelity check: the official Okta Python SDK (okta==3.4.6) calls the Okta sandbox's
WebAuthn Preregistration API and parses every answer into its own models.

stdin: {"phase": "enroll"|"activate", "org_url", "token", "user_id", ...}
- enroll:   + "transport_key" (JWK), "rp_ids"  -> the EnrollmentInitializationResponse
- activate: + "cred_responses" [{id, jwe}], "pin_response", "serial", "version",
            "signing_keys" [JWK]               -> activation, send-pin, enrollments list
stdout: one JSON object (the parsed models, dumped back by alias).
"""
import asyncio
import json
import os
import sys

# The sandbox is plain HTTP on loopback: the SDK's documented testing switch (read from
# the environment; a "testing" key in the client config is not passed through).
os.environ["OKTA_TESTING_TESTINGDISABLEHTTPSCHECK"] = "true"

from okta.client import Client
from okta.models import (
    ECKeyJWK,
    EnrollmentActivationRequest,
    EnrollmentActivationResponse,
    EnrollmentInitializationRequest,
    EnrollmentInitializationResponse,
    PinRequest,
    WebAuthnCredResponse,
    WebAuthnPreregistrationFactor,
)


def client(inp):
    return Client({
        "orgUrl": inp["org_url"],
        # okta 3.4.6's generated apiToken auth writes "SSWS" + token with no space
        # ("SSWSabc"); a leading space in the token makes the header "SSWS abc".
        "token": " " + inp["token"],
        "rateLimit": {"maxRetries": 0},
    })


def unwrap(result, what):
    """The SDK answers (model, response, error) or (response, error)."""
    if isinstance(result, tuple):
        err = result[-1]
        if err is not None:
            raise SystemExit(f"{what}: the SDK reported an error: {err}")
        return result[0]
    return result


async def enroll(inp):
    c = client(inp)
    req = EnrollmentInitializationRequest(
        enrollment_rp_ids=inp["rp_ids"],
        fulfillment_provider="yubico",
        user_id=inp["user_id"],
        yubico_transport_key_jwk=ECKeyJWK.from_dict(inp["transport_key"]),
    )
    resp = unwrap(await c.enroll_preregistration_enrollment(req), "enroll")
    assert isinstance(resp, EnrollmentInitializationResponse), type(resp)
    return {"enroll": resp.to_dict()}


async def activate(inp):
    c = client(inp)
    req = EnrollmentActivationRequest(
        cred_responses=[
            WebAuthnCredResponse(authenticator_enrollment_id=r["id"], cred_response_jwe=r["jwe"])
            for r in inp["cred_responses"]
        ],
        fulfillment_provider="yubico",
        pin_response_jwe=inp["pin_response"],
        serial=inp["serial"],
        user_id=inp["user_id"],
        version=inp["version"],
        yubico_signing_jwks=[ECKeyJWK.from_dict(k) for k in inp["signing_keys"]],
    )
    act = unwrap(await c.activate_preregistration_enrollment(req), "activate")
    assert isinstance(act, EnrollmentActivationResponse), type(act)
    fid = inp["cred_responses"][0]["id"]
    unwrap(await c.send_pin(PinRequest(
        authenticator_enrollment_id=fid, fulfillment_provider="yubico", user_id=inp["user_id"])), "send-pin")
    factors = unwrap(await c.list_web_authn_preregistration_factors(inp["user_id"]), "list")
    assert all(isinstance(f, WebAuthnPreregistrationFactor) for f in factors), [type(f) for f in factors]
    return {"activate": act.to_dict(), "factors": [f.to_dict() for f in factors]}


def main():
    inp = json.load(sys.stdin)
    fn = {"enroll": enroll, "activate": activate}[inp["phase"]]
    out = asyncio.run(fn(inp))
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
