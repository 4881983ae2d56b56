/**
 * What an app on the daemon's machine uses: the daemon's token as a `TokenSource` (socket or file), the
 * token file's reading and store, the default paths, and the errors and exit codes. The command's own
 * modules (`Refresher`, `Settings`, `SocketServer`, `SystemdUnit`, ...) are internal: importable from
 * their files, not part of this entry.
 *
 * @since 0.1.0
 */

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
export * as TokenFile from "./TokenFile.js"
