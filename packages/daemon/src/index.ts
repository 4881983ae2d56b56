/**
 * @since 0.1.0
 */
export * as DaemonError from "./DaemonError.js"
/**
 * @since 0.1.0
 */
export * as DaemonTokenSource from "./DaemonTokenSource.js"
/**
 * @since 0.1.0
 */
export * as Paths from "./Paths.js"
/**
 * @since 0.1.0
 */
export * as Refresher from "./Refresher.js"
/**
 * @since 0.1.0
 */
export * as Settings from "./Settings.js"
/**
 * @since 0.1.0
 */
export * as SocketServer from "./SocketServer.js"
/**
 * @since 0.1.0
 */
export * as SystemdUnit from "./SystemdUnit.js"
/**
 * @since 0.1.0
 */
export * as TokenFile from "./TokenFile.js"
