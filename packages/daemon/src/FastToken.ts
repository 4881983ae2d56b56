/**
 * `strava-auth token` without Effect: the socket asked over `node:net` (a raw HTTP/1.1 request, which loads
 * far less than `node:http`), and, when no daemon runs, the token file read and checked with `node:fs`.
 *
 * Invariant: the fast path answers only where the full path (`Cli`'s `token`: `Settings.local`,
 * `TokenFile.read`, the margin) would print the same token without asking Strava; in every other case
 * (anything unusual about the settings, the socket or the file, or a token within the margin) it defers to
 * the full path, which then refreshes, or says what is wrong and exits as it always does. So it can be
 * stricter than the full path, never looser: `FastToken.test.ts` runs both side by side over the fuzz corpus
 * and the hardening cases.
 *
 * @internal The command's own, not part of `@strava-auth/daemon`'s entry.
 * @since 0.2.0
 */
import * as Fs from "node:fs"
import * as Net from "node:net"

/** The token file's format version (`TokenFile.version`). */
const fileVersion = 1
/** The most a token file holds (`TokenFile`'s limit). */
const maxBytes = 64 * 1024
/** The default and the largest refresh margin (`TokenSource.defaultMargin`, `Settings`' 6 hours). */
const defaultMarginMillis = 45 * 60 * 1000
const maxMarginMillis = 6 * 60 * 60 * 1000

/**
 * The refresh margin from `STRAVA_AUTH_REFRESH_MARGIN`, in milliseconds: the default when unset or blank;
 * `undefined` (defer) for anything but a plain `<digits>s|m|h` within (0, 6h], which the full path parses or
 * refuses itself.
 *
 * @since 0.2.0
 */
export const marginOf = (value: string | undefined): number | undefined => {
  if (value === undefined || value.trim() === "") return defaultMarginMillis
  const match = /^(\d{1,7})(s|m|h)$/.exec(value)
  if (match === null) return undefined
  const millis = Number(match[1]) * (match[2] === "s" ? 1000 : match[2] === "m" ? 60_000 : 3_600_000)
  return millis > 0 && millis <= maxMarginMillis ? millis : undefined
}

/**
 * What the fast path does with a token file: answer with its access token, or defer to the full path.
 *
 * @since 0.2.0
 */
export type Verdict = { readonly _tag: "Answer"; readonly token: string } | { readonly _tag: "Defer" }

const defer: Verdict = { _tag: "Defer" }

const isNullableString = (value: unknown) => value === undefined || value === null || typeof value === "string"
const athleteFields = ["username", "firstname", "lastname", "city", "state", "country", "profile", "profile_medium"]

/** The file's JSON as `TokenFile.TokenFileJson` decodes it (extra fields ignored, as Schema does). */
const accessTokenOf = (value: unknown): string | undefined => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined
  const file = value as Record<string, unknown>
  const text = (name: string) => typeof file[name] === "string"
  if (file["version"] !== fileVersion || !text("token_type") || !text("scope") || !text("updated_at")) {
    return undefined
  }
  if (!Number.isSafeInteger(file["expires_at"])) return undefined
  const access = file["access_token"]
  const refresh = file["refresh_token"]
  if (typeof access !== "string" || access === "" || typeof refresh !== "string" || refresh === "") return undefined
  const athlete = file["athlete"]
  if (athlete !== undefined && athlete !== null) {
    if (typeof athlete !== "object" || Array.isArray(athlete)) return undefined
    const a = athlete as Record<string, unknown>
    if (typeof a["id"] !== "number" || !athleteFields.every((name) => isNullableString(a[name]))) return undefined
  }
  return access
}

/**
 * The verdict on the token file at `path` at `nowMillis`: answered only when it is a regular file (not a
 * link), private to its owner (no group or other bits), at most 64 KiB, a valid strava-auth token file, and its
 * token has more than `marginMillis` left.
 *
 * @since 0.2.0
 */
export const fileVerdict = (path: string, marginMillis: number, nowMillis: number): Verdict => {
  let fd: number
  try {
    const link = Fs.lstatSync(path)
    if (!link.isFile() || (link.mode & 0o077) !== 0 || link.size > maxBytes) return defer
    fd = Fs.openSync(path, Fs.constants.O_RDONLY | Fs.constants.O_NOFOLLOW | Fs.constants.O_NONBLOCK)
  } catch {
    return defer
  }
  let text: string
  try {
    const info = Fs.fstatSync(fd)
    if (!info.isFile() || (info.mode & 0o077) !== 0 || info.size > maxBytes) return defer
    const buffer = Buffer.alloc(Math.max(1, info.size))
    const read = Fs.readSync(fd, buffer, 0, buffer.length, 0)
    text = buffer.subarray(0, read).toString("utf8")
  } catch {
    return defer
  } finally {
    Fs.closeSync(fd)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return defer
  }
  const token = accessTokenOf(json)
  if (token === undefined) return defer
  const expiresAt = (json as { readonly expires_at: number }).expires_at
  return expiresAt * 1000 - nowMillis > marginMillis ? { _tag: "Answer", token } : defer
}

/**
 * The daemon's answer to one `GET path` on its socket, or why there is none: `absent` when nothing listens
 * (no socket file, or a stale one: the full path then reads the file too), `failed` for anything else.
 *
 * @since 0.2.0
 */
export type SocketReply =
  | { readonly _tag: "Reply"; readonly status: number; readonly body: string }
  | { readonly _tag: "Absent" }
  | { readonly _tag: "Failed" }

/**
 * One request over the Unix socket, HTTP/1.1 written by hand, the answer read to its end (`Content-Length`,
 * as the daemon sends, or chunked); 2 s at most.
 *
 * @since 0.2.0
 */
export const ask = (socketPath: string, path: string, done: (reply: SocketReply) => void): void => {
  let settled = false
  const finish = (reply: SocketReply) => {
    if (settled) return
    settled = true
    socket.destroy()
    done(reply)
  }
  const chunks: Array<Buffer> = []
  const socket = Net.connect(socketPath)
  socket.setTimeout(2000, () => finish({ _tag: "Failed" }))
  socket.on("connect", () => socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`))
  socket.on("data", (chunk: Buffer) => {
    chunks.push(chunk)
    const reply = parse(Buffer.concat(chunks))
    if (reply !== undefined) finish(reply)
  })
  socket.on("end", () => finish(parse(Buffer.concat(chunks)) ?? { _tag: "Failed" }))
  socket.on(
    "error",
    (error: NodeJS.ErrnoException) =>
      finish(error.code === "ENOENT" || error.code === "ECONNREFUSED" ? { _tag: "Absent" } : { _tag: "Failed" })
  )
}

/** A complete response (a `Content-Length` or a chunked body), or `undefined` while it is not all there. */
const parse = (bytes: Buffer): SocketReply | undefined => {
  const end = bytes.indexOf("\r\n\r\n")
  if (end === -1) return undefined
  const head = bytes.subarray(0, end).toString("latin1").split("\r\n")
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? "")
  if (status === null) return { _tag: "Failed" }
  const header = (name: RegExp) => head.map((line) => name.exec(line)).find((m) => m !== null)
  const body = bytes.subarray(end + 4)
  const length = header(/^content-length:\s*(\d+)\s*$/i)
  if (length !== undefined && length !== null) {
    if (body.length < Number(length[1])) return undefined
    return { _tag: "Reply", status: Number(status[1]), body: body.subarray(0, Number(length[1])).toString("utf8") }
  }
  if (header(/^transfer-encoding:\s*chunked\s*$/i) === undefined) return { _tag: "Failed" }
  // chunked: <hex size>\r\n<data>\r\n ... 0\r\n\r\n
  const parts: Array<Buffer> = []
  let at = 0
  for (;;) {
    const lineEnd = body.indexOf("\r\n", at)
    if (lineEnd === -1) return undefined
    const size = Number.parseInt(body.subarray(at, lineEnd).toString("latin1").split(";")[0]!.trim(), 16)
    if (!Number.isInteger(size) || size < 0 || size > 1024 * 1024) return { _tag: "Failed" }
    if (size === 0) return { _tag: "Reply", status: Number(status[1]), body: Buffer.concat(parts).toString("utf8") }
    if (body.length < lineEnd + 2 + size + 2) return undefined
    parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size))
    at = lineEnd + 2 + size + 2
  }
}
