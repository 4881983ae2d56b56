/**
 * @since 0.1.0
 */
export * as AuthorizePage from "./AuthorizePage.js"
/**
 * @since 0.1.0
 */
export * as Fault from "./Fault.js"
/**
 * @since 0.1.0
 */
export * as MockServer from "./MockServer.js"
/**
 * @since 0.1.0
 */
export * as MockStrava from "./MockStrava.js"
/**
 * @since 0.1.0
 */
export * as Simulator from "./Simulator.js"
/**
 * @since 0.1.0
 */
export * as StravaResponse from "./StravaResponse.js"
