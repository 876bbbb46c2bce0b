// Signs webhook payloads with octokit's own signer (@octokit/webhooks-methods), for
// tests/tests/contract_octokit.rs.
//
// stdin:  {"cases": [{"secret": "...", "payload": "...", "check": "sha256=..."}, ...]}
//         (`payload` is the exact body as a string; `check`, optional, is a signature made by
//         our Rust code that octokit's `verify` should accept)
// stdout: one JSON line per case, in order:
//         {"signature": "sha256=...", "octokit_verifies_own": true, "octokit_verifies_check": true|null}
import { sign, verify } from "@octokit/webhooks-methods";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { cases } = JSON.parse(Buffer.concat(chunks).toString("utf8"));

for (const c of cases) {
  const signature = await sign(c.secret, c.payload);
  const octokit_verifies_own = await verify(c.secret, c.payload, signature);
  const octokit_verifies_check =
    typeof c.check === "string" ? await verify(c.secret, c.payload, c.check) : null;
  process.stdout.write(
    JSON.stringify({ signature, octokit_verifies_own, octokit_verifies_check }) + "\n",
  );
}
