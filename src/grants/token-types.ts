// URNs on the wire (RFC 8693 token exchange plus our own names).
export const MINT_GRANT_TYPE = 'urn:jenkins-oidc:grant-type:build-request-token';
export const EXCHANGE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const REQUEST_TOKEN_TYPE = 'urn:jenkins-oidc:token-type:build-request-token';
export const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
