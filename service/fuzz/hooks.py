"""Schemathesis hooks for service/fuzz/run.sh.

The fuzzed service runs one job type, `hello`, whose flow requires the
parameter `who`. The document cannot name a deployment's parameters (they
are `additionalProperties`), so a generated submission of `hello` almost
never has `who` and is refused (400) before it reaches the board. This
hook gives `who` to three in four such submissions (chosen by a checksum
of the body, so a run stays reproducible with its seed): those are
accepted (202) and give the stateful phase real jobs to follow; the rest
still test the refusal. Adding a key to `parameters` cannot make a valid
body invalid or an invalid one valid.
"""

import json
import zlib

import schemathesis


@schemathesis.hook("map_body").apply_to(operation_id="submitJob")
def give_hello_its_parameter(context, body):
    job = body.get("job") if isinstance(body, dict) else None
    if not isinstance(job, dict) or job.get("name") != "hello":
        return body
    parameters = job.get("parameters", {})
    if not isinstance(parameters, dict) or "who" in parameters:
        return body
    if zlib.crc32(json.dumps(body, sort_keys=True, default=str).encode()) % 4 == 0:
        return body
    job["parameters"] = {**parameters, "who": "world"}
    return body
