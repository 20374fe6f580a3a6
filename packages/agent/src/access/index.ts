export { clusterIdentity, clusterCaOf, agentTlsIdentity, caPin, type ClusterIdentity } from './cluster-identity.js'
export { issueToken, verifyToken, readTokenClaims, TokenError, DEFAULT_TOKEN_LIFETIME_MS, MAX_TOKEN_LIFETIME_MS, type UserClaims } from './user-token.js'
export { ROLES, REQUIRED_ROLE, isRole, roleAllows, type Role } from './roles.js'
export { Revocations } from './revocations.js'
