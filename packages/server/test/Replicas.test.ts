// Three replicas of the example web app (separate processes, the shipped build, configured only by their
// environment with DATABASE_URL) on one PostgreSQL, 1,000 connected athletes whose tokens come due, and bursts
// of concurrent requests spread over the replicas. The mock Strava runs in this process, as a loopback server.
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import { MockServer, MockStrava, Simulator } from "@strava-auth/testing"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"

import * as Migrations from "../src/Migrations.js"
import * as SqlGrantStore from "../src/SqlGrantStore.js"
import { appEnv, freshDatabase, oauthAgainst, pool, type Replica, startReplica } from "./fixtures.js"

const ATHLETES = 1000
const athletes: ReadonlyArray<Simulator.Athlete> = Array.from({ length: ATHLETES }, (_, i) => ({
  ...Simulator.defaultAthlete,
  id: 100_000 + i,
  username: `athlete${i}`,
  firstname: `First${i}`
}))

/** A load balancer's view: a request goes to `replicas[i]`; on a connection error, to the next live one. */
const request = async (replicas: ReadonlyArray<Replica>, start: number, path: string) => {
  for (let k = 0; k < replicas.length; k++) {
    const replica = replicas[(start + k) % replicas.length]!
    try {
      const response = await fetch(`${replica.url}${path}`)
      return { status: response.status, body: await response.text() }
    } catch {
      // this replica is gone: the balancer tries another
    }
  }
  return { status: 0, body: "no replica answered" }
}

/** Runs `count` requests with at most `width` at a time. */
const burst = async (count: number, width: number, one: (i: number) => Promise<{ status: number }>) => {
  const statuses: Array<number> = new Array(count)
  let next = 0
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < count) {
      const i = next++
      statuses[i] = (await one(i)).status
    }
  }))
  return statuses
}

describe("three replicas on one PostgreSQL", () => {
  it.live(
    "1,000 athletes come due: bursts over 3 replicas refresh each grant exactly once; a replica killed mid-burst loses nothing it stored",
    () =>
      Effect.gen(function*() {
        // A mock whose refresh always mints (its one-hour rule is longer than a token's life).
        const mockContext = yield* Layer.build(
          MockServer.layer({
            athletes,
            refreshThresholdMillis: 7 * 3600_000,
            rateLimits: {
              overall: { fifteenMinutes: 1_000_000, daily: 1_000_000 },
              read: { fifteenMinutes: 1_000_000, daily: 1_000_000 }
            }
          })
        )
        const server = Context.get(mockContext, MockServer.MockServer)
        const mock = Context.get(mockContext, MockStrava.MockStrava)
        const database = yield* freshDatabase

        // 1,000 athletes connect (through Strava's page and the code exchange), their grants stored.
        const dbContext = yield* Layer.build(pool(database))
        const store = yield* Effect.zipRight(Migrations.run, SqlGrantStore.make()).pipe(
          Effect.provide(dbContext),
          Effect.orDie
        )
        const oauth = yield* oauthAgainst(server, mock)
        yield* Effect.forEach(athletes, (athlete) =>
          Effect.gen(function*() {
            const url = yield* oauth.authorizeUrl({ redirectUri: "http://localhost/cb", state: "s" })
            const redirect = yield* mock.approve(url, { athleteId: athlete.id })
            const code = new URL(redirect).searchParams.get("code")!
            const tokens = yield* oauth.exchangeCode({ code, scopes: ["read"] })
            yield* store.put(String(athlete.id), tokens)
          }), { concurrency: 20, discard: true }).pipe(Effect.orDie)
        const sql = Context.get(dbContext, SqlClient.SqlClient)
        const comeDue = sql`UPDATE strava_grants SET expires_at = now() + interval '60 seconds'`.pipe(Effect.orDie)

        const env = appEnv(server, mock, database)
        const replicas = [yield* startReplica(env), yield* startReplica(env), yield* startReplica(env)]

        const refreshLog = Effect.map(mock.log, (log) =>
          log.filter((e) => e.endpoint === "token" && e.grantType === "refresh_token"))

        // Cycle 1: every grant due; each athlete asked for twice, on two different replicas, 60 at a time.
        yield* comeDue
        yield* mock.clearLog
        const statuses = yield* Effect.promise(() =>
          burst(ATHLETES * 2, 60, (i) =>
            request(replicas, i % 3, `/athletes/${athletes[Math.floor(i / 2)]!.id}`))
        )
        assert.deepStrictEqual([...new Set(statuses)], [200], "every request answered 200")
        const first = yield* refreshLog
        const perAthlete = new Map<string, number>()
        for (const entry of first) {
          perAthlete.set(entry.refreshToken ?? "", (perAthlete.get(entry.refreshToken ?? "") ?? 0) + 1)
        }
        assert.strictEqual(first.length, ATHLETES, "one refresh per grant")
        assert.strictEqual(perAthlete.size, ATHLETES, "every grant refreshed")
        assert.deepStrictEqual([...new Set(perAthlete.values())], [1], "no grant refreshed twice")
        assert.strictEqual(first.filter((e) => e.outcome !== "refreshed").length, 0, "zero invalid_grant")

        // Cycle 2: due again; a replica is killed with SIGKILL while the burst runs.
        yield* comeDue
        yield* mock.clearLog
        const victim = replicas[1]!
        const second = yield* Effect.promise(async () => {
          const running = burst(ATHLETES, 60, (i) => request(replicas, i % 3, `/athletes/${athletes[i]!.id}`))
          // Kill once the burst is well under way: after a third of the grants were refreshed.
          const deadline = Date.now() + 30_000
          while (Date.now() < deadline) {
            const done = (await Effect.runPromise(refreshLog)).length
            if (done >= ATHLETES / 3) break
            await new Promise((resolve) => setTimeout(resolve, 5))
          }
          victim.child.kill("SIGKILL")
          return running
        })
        assert.isTrue(victim.child.signalCode === "SIGKILL" || victim.child.exitCode !== null)
        const refreshes = yield* refreshLog

        // Lost: a grant whose refresh Strava answered in the instant before the kill and that was never stored
        // (Strava invalidates the old refresh token at once). Counted from the mock against the database.
        const lostIds: Array<number> = []
        const answeredButUnsaved = new Set(
          refreshes.filter((e) => e.outcome === "refreshed").map((e) => e.refreshToken ?? "")
        )
        for (const athlete of athletes) {
          const stored = yield* store.get(String(athlete.id)).pipe(Effect.orDie)
          const live = yield* mock.liveRefreshToken(athlete.id)
          if (stored._tag === "None" || Redacted.value(stored.value.refreshToken) !== live) {
            lostIds.push(athlete.id)
            // The only way to lose one: Strava answered a refresh of the stored token (the log has it), and the
            // answer was never stored: the killed replica's.
            assert.isTrue(stored._tag === "Some" && answeredButUnsaved.has(Redacted.value(stored.value.refreshToken)))
          }
        }
        const lost = lostIds.length
        // A refused refresh is only ever the next attempt on a lost grant (its stored refresh token is the old one).
        const refused = refreshes.filter((e) => e.outcome !== "refreshed").length
        console.log(
          `killed replica mid-burst: ${refreshes.length} refreshes, ${lost} grant(s) lost in flight, ` +
            `${refused} refused refresh(es) of those`
        )
        assert.isAtMost(refused, lost * 3, "invalid_grant only for grants lost in flight")
        assert.isAtMost(lost, 60, "at most the requests in flight at the kill")
        // Every grant was refreshed once at Strava in this cycle, no grant twice (a lost one by the killed replica).
        assert.strictEqual(refreshes.length - refused, ATHLETES, "each grant refreshed exactly once")
        // Every request was answered (the balancer sends what the dead replica dropped to another): 200, or 409
        // (connect again) for a lost grant.
        assert.deepStrictEqual(second.filter((s) => s !== 200 && s !== 409), [], "every request answered")
        assert.isAtMost(second.filter((s) => s === 409).length, lost)

        // Every grant that was not lost still works through the survivors (its stored refresh token is the one
        // Strava accepts, checked above for all); asked for on a sample of 200, with every lost one in it.
        const survivors = [replicas[0]!, replicas[2]!]
        const sample = [
          ...lostIds,
          ...athletes.filter((a) => !lostIds.includes(a.id)).slice(0, 200 - lostIds.length).map((a) => a.id)
        ]
        const after = yield* Effect.promise(() =>
          burst(sample.length, 60, (i) => request(survivors, i % 2, `/athletes/${sample[i]}`))
        )
        assert.deepStrictEqual(after.slice(lostIds.length).filter((s) => s !== 200), [])
        assert.deepStrictEqual(
          after.slice(0, lostIds.length).filter((s) => s !== 409),
          [],
          "a lost grant asks for a new connect"
        )
      }).pipe(Effect.scoped),
    { timeout: 180_000 }
  )
})
