# Drives Vault's own Python client (hvac) for the tests: one operation per
# run, described by a JSON argument, answered as one JSON line on stdout.
# The Vault token never leaves this process except where the test asks for
# it (login answers only whether one came back and what it carries).
import json
import sys

import hvac

req = json.loads(sys.argv[1])
client = hvac.Client(url=req["addr"], token=req.get("token"))
out = {}
try:
    if req["op"] == "login":
        answer = client.auth.jwt.jwt_login(role=req["role"], jwt=req["jwt"], path=req.get("path", "jwt"))
        auth = answer["auth"]
        out = {
            "ok": True,
            "token_set": client.token == auth["client_token"],
            "auth": {k: auth[k] for k in ("policies", "token_policies", "metadata", "lease_duration", "renewable", "token_type", "orphan")},
            # The token hvac now holds works: Vault knows it.
            "lookup_policies": client.auth.token.lookup_self()["data"]["policies"],
        }
    elif req["op"] == "lookup-self":
        data = client.auth.token.lookup_self()["data"]
        out = {"ok": True, "policies": data["policies"], "meta": data["meta"]}
    else:
        raise SystemExit("unknown op " + req["op"])
except hvac.exceptions.VaultError as err:
    out = {"ok": False, "error": type(err).__name__, "errors": err.errors}
print(json.dumps(out))
