/**
 * The systemd units: a user unit (XDG paths, the user's own socket) and a system unit (`StateDirectory=`,
 * `RuntimeDirectory=`, the client secret through `LoadCredential=`, a dedicated user, strict sandboxing).
 *
 * Both restart on failure except on 77 (login needed) and 78 (configuration), where a restart cannot help.
 * `Type=notify`: the daemon says `READY=1` once its socket serves and pings the watchdog from its refresh loop
 * (`Notify`); `NotifyAccess=all` because the messages come from `systemd-notify`, a child. `WatchdogSec=` is
 * generous: a refresh may wait on the token file's lock and on Strava for minutes without being wedged.
 * `MemoryDenyWriteExecute=` is deliberately absent: V8's JIT needs writable-executable memory.
 *
 * @internal The command's `systemd-unit`, not part of `@strava-auth/daemon`'s entry.
 * @since 0.1.0
 */
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

/**
 * @since 0.1.0
 * @category models
 */
export type Kind = "user" | "system"

/**
 * `node /path/to/strava-auth.js`: how this installation starts the command.
 *
 * @since 0.1.0
 * @category paths
 */
export const thisInstallation = (): string => `${process.execPath} ${thisBin()}`

const thisBin = () => Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..", "bin", "strava-auth.js")

/** Directories a system unit's sandbox hides (`ProtectHome=yes`, `PrivateTmp=yes`). */
const hidden = ["/home/", "/root/", "/run/user/", "/tmp/", "/var/tmp/"]

/**
 * Why a system unit cannot run `bin` with `node` (or undefined when it can): a command outside an installation
 * (a checkout: not under `node_modules`), or in a directory the unit's sandbox hides from `User=strava-auth`.
 *
 * @since 0.1.0
 * @category paths
 */
export const systemRefusal = (bin: string = thisBin(), node: string = process.execPath): string | undefined => {
  const install = "Install the command where every user can run it: in the checkout, `pnpm --filter " +
    "@strava-auth/daemon pack`, then `sudo npm install -g ./strava-auth-daemon-<version>.tgz` (which gives " +
    "/usr/local/bin/strava-auth), and run `strava-auth systemd-unit --system` from there."
  if (!bin.split(Path.sep).includes("node_modules")) {
    return `this strava-auth runs from a checkout (${bin}), not an installation; a system service should not ` +
      `run a working copy. ${install}`
  }
  const hiddenIn = (path: string) => hidden.find((dir) => `${path}/`.startsWith(dir))
  for (const [what, path] of [["the command", bin], ["node", node]] as const) {
    const dir = hiddenIn(path)
    if (dir !== undefined) {
      return `${what} is at ${path}, under ${dir}, which the system unit hides from its service (ProtectHome=, ` +
        `PrivateTmp=, User=strava-auth). ${
          what === "node" ?
            "Install Node system-wide (/usr/bin/node or " +
            "/usr/local/bin/node), then install the command with it. " :
            ""
        }${install}`
    }
  }
  return undefined
}

/**
 * The generic command the shipped files use.
 *
 * @since 0.1.0
 * @category paths
 */
export const shippedCommand = "/usr/local/bin/strava-auth"

const unitSection = `[Unit]
Description=strava-auth: keeps a Strava access token fresh and serves it on a Unix socket
Wants=network-online.target
After=network-online.target
`

const common = `Restart=on-failure
RestartSec=5
RestartPreventExitStatus=77 78
ExecReload=/bin/kill -HUP $MAINPID
KillSignal=SIGTERM
TimeoutStopSec=30
UMask=0077
NoNewPrivileges=yes
LockPersonality=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
SystemCallArchitectures=native
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6`

/**
 * The unit file text.
 *
 * @since 0.1.0
 * @category rendering
 */
export const render = (kind: Kind, command: string = shippedCommand): string =>
  kind === "user"
    ? `# strava-auth user service: ~/.config/systemd/user/strava-auth.service
# Settings: ~/.config/strava-auth/env (STRAVA_CLIENT_ID=..., STRAVA_CLIENT_SECRET_FILE=...), mode 0600.
# Token file: ~/.local/state/strava-auth/token.json; socket: $XDG_RUNTIME_DIR/strava-auth/token.sock.
${unitSection}
[Service]
Type=notify
NotifyAccess=all
WatchdogSec=10min
EnvironmentFile=-%h/.config/strava-auth/env
ExecStart=${command} daemon
${common}

[Install]
WantedBy=default.target
`
    : `# strava-auth system service: /etc/systemd/system/strava-auth.service
# Settings: /etc/strava-auth/env (STRAVA_CLIENT_ID=...); the secret: /etc/strava-auth/client-secret (0600 root).
# Token file: /var/lib/strava-auth/token.json; socket: /run/strava-auth/token.sock (0660, group strava-auth:
# add the users who may read the token to it: usermod -aG strava-auth NAME).
${unitSection}
[Service]
Type=notify
NotifyAccess=all
WatchdogSec=10min
User=strava-auth
Group=strava-auth
EnvironmentFile=-/etc/strava-auth/env
LoadCredential=strava-client-secret:/etc/strava-auth/client-secret
StateDirectory=strava-auth
StateDirectoryMode=0700
RuntimeDirectory=strava-auth
RuntimeDirectoryMode=0750
ExecStart=${command} daemon --socket-group strava-auth
${common}
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
CapabilityBoundingSet=

[Install]
WantedBy=multi-user.target
`
