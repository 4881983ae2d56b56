/**
 * A watch on the token file's directory that survives the directory being deleted and made again.
 *
 * `fs.watch` (inotify) watches an inode: once the directory is removed (`rm -rf` of the state directory), the
 * watcher stays open but never fires again, and a new directory at the same path goes unseen. So the path is
 * checked every second with `lstat`: when the directory is gone, the watch is dropped; when a directory is
 * there that is not the one watched (another inode, or the old watch reported its own deletion), it is
 * watched anew and `onChange` runs once, for whatever was written into it before the new watch started.
 *
 * @since 0.1.0
 */
import * as Fs from "node:fs"
import * as Path from "node:path"

import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"

/**
 * Calls `onChange` on any change in `dir` until the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const watch = (
  dir: string,
  onChange: () => void,
  recheck: Duration.DurationInput = Duration.seconds(1)
): Effect.Effect<void, never, Scope.Scope> => {
  let watcher: Fs.FSWatcher | undefined
  let watched: number | undefined // the inode being watched
  const self = Path.basename(dir)
  const drop = () => {
    watcher?.close()
    watcher = undefined
    watched = undefined
  }
  const arm = (initial: boolean) => {
    let ino: number | undefined
    try {
      const stats = Fs.lstatSync(dir)
      ino = stats.isDirectory() ? stats.ino : undefined
    } catch {
      ino = undefined
    }
    if (ino === watched) return
    drop()
    if (ino === undefined) return
    try {
      const next = Fs.watch(dir, { persistent: false }, (_event, name) => {
        // the directory itself was removed or renamed: the watch is dead; re-armed at the next check
        if (name === self) watched = undefined
        onChange()
      })
      next.on("error", () => {
        if (watcher === next) drop()
      })
      watcher = next
      watched = ino
    } catch {
      return // gone again meanwhile; the next check tries again
    }
    if (!initial) onChange()
  }
  return Effect.acquireRelease(Effect.sync(() => arm(true)), () => Effect.sync(drop)).pipe(
    Effect.zipRight(Effect.forkScoped(Effect.repeat(Effect.sync(() => arm(false)), Schedule.spaced(recheck)))),
    Effect.asVoid
  )
}
