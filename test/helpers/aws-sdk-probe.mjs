// A build step that uses the real AWS SDK for JavaScript, run as its own
// process with the build's environment: it resolves credentials the way the
// SDK does for any tool (a credential_process profile, or a web identity
// token file), then calls STS GetCallerIdentity with them. Endpoints come from
// AWS_ENDPOINT_URL_STS, like any SDK user's; trust in the test CA from
// NODE_EXTRA_CA_CERTS. Prints one JSON line; never the secret key.
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { fromEnv, fromIni, fromNodeProviderChain, fromTokenFile } from '@aws-sdk/credential-providers';

const mode = process.argv[2];
const provider =
  mode === 'ini' ? fromIni() : mode === 'token-file' ? fromTokenFile() : mode === 'env' ? fromEnv() : mode === 'default' ? fromNodeProviderChain() : undefined;
if (!provider) {
  console.error('usage: aws-sdk-probe.mjs ini|token-file|env|default');
  process.exit(2);
}
try {
  const credentials = await provider();
  const client = new STSClient({ credentials, maxAttempts: 1 });
  const identity = await client.send(new GetCallerIdentityCommand({}));
  process.stdout.write(`${JSON.stringify({ accessKeyId: credentials.accessKeyId, expiration: credentials.expiration?.toISOString(), arn: identity.Arn, account: identity.Account })}\n`);
} catch (err) {
  process.stdout.write(`${JSON.stringify({ error: err.name, message: err.message })}\n`);
  process.exitCode = 1;
}
