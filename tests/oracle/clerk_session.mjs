// Test-only oracle: how Clerk's own JS SDK (@clerk/backend) judges session tokens.
//
// Reads one JSON document on stdin:
//   {"jwtKey": PEM, "authorizedParties": [...], "cases": [{"name", "token", "audience"?}]}
// and writes one JSON array on stdout, one entry per case:
//   {"name", "signedIn", "userId", "orgId", "actor"}
// Each token goes through `authenticateRequest` as a bearer header, the way a
// backend using the SDK sees it; `toAuth()` gives what the SDK would hand the
// application (a pending session counts as signed out, the SDK's default).
import { createClerkClient } from '@clerk/backend';

const input = JSON.parse(await new Promise((resolve) => {
  let text = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => { text += chunk; });
  process.stdin.on('end', () => resolve(text));
}));

// A publishable key only names the instance's Frontend API; with `jwtKey` the
// check is networkless, and telemetry is off, so nothing leaves the machine.
const publishableKey = 'pk_test_' + Buffer.from('clerk.cosma.test$').toString('base64');
const clerk = createClerkClient({
  secretKey: 'sk_test_oracle',
  publishableKey,
  telemetry: { disabled: true },
});

const results = [];
for (const item of input.cases) {
  const request = new Request('https://api.cosma.test/auth/session', {
    headers: { authorization: `Bearer ${item.token}` },
  });
  const options = { jwtKey: input.jwtKey, authorizedParties: input.authorizedParties };
  if (item.audience !== undefined) options.audience = item.audience;
  const state = await clerk.authenticateRequest(request, options);
  const auth = state.toAuth();
  const signedIn = state.isSignedIn && !!auth && !!auth.userId;
  results.push({
    name: item.name,
    signedIn,
    userId: signedIn ? auth.userId : null,
    orgId: signedIn ? (auth.orgId ?? null) : null,
    actor: signedIn ? (auth.actor ?? null) : null,
  });
}
process.stdout.write(JSON.stringify(results));
