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
 * @since 0.1.0
 */
export * as OAuthState from "./OAuthState.js"
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
/**
 * @since 0.1.0
 */
export * as TokenStore from "./TokenStore.js"
