/**
 * @since 0.1.0
 */
export * as AuthorizationError from "./AuthorizationError.js"
/**
 * @since 0.1.0
 */
export * as AuthorizeUrl from "./AuthorizeUrl.js"
/**
 * @since 0.1.0
 */
export * as Callback from "./Callback.js"
/**
 * Grants under a key (an athlete, an account), with a compare-and-set write and a lock per grant.
 *
 * @since 0.2.0
 */
export * as GrantStore from "./GrantStore.js"

/**
 * The one refresh engine: the locked refresh sequence, the failure policy and the per-grant scheduler.
 *
 * @since 0.2.0
 */
export * as RefreshEngine from "./RefreshEngine.js"

/**
 * @since 0.1.0
 */
export * as OAuthState from "./OAuthState.js"
export * as PushSubscription from "./PushSubscription.js"
/**
 * @since 0.1.0
 */
export * as RateLimit from "./RateLimit.js"
/**
 * @since 0.1.0
 */
export * as StravaClient from "./StravaClient.js"
/**
 * @since 0.1.0
 */
export * as StravaConfig from "./StravaConfig.js"
/**
 * @since 0.1.0
 */
export * as StravaError from "./StravaError.js"
/**
 * @since 0.1.0
 */
export * as StravaOAuth from "./StravaOAuth.js"
/**
 * @since 0.1.0
 */
export * as StravaScope from "./StravaScope.js"
/**
 * @since 0.1.0
 */
export * as Token from "./Token.js"
/**
 * @since 0.1.0
 */
export * as TokenSource from "./TokenSource.js"
