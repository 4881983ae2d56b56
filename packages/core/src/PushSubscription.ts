/**
 * Strava's push subscription (webhooks), one per app: programs that view, create and delete it.
 *
 * `create` looks before it creates (Strava refuses a second subscription): the app's subscription to the same
 * callback is returned as it is; one to another callback is an error that says to delete it first. Strava
 * validates the callback while it creates (a `GET` with `hub.challenge` and the verify token, answered within
 * two seconds), so the app's webhook route must already be up.
 *
 * The client secret travels as a parameter, as Strava requires there, and appears in no log or error.
 *
 * @since 0.3.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

import type * as StravaError from "./StravaError.js"
import type { PushSubscription } from "./StravaOAuth.js"
import { StravaOAuth } from "./StravaOAuth.js"

/**
 * The app already has a subscription, to another callback.
 *
 * @since 0.3.0
 * @category errors
 */
export class SubscriptionExists extends Schema.TaggedError<SubscriptionExists>()("SubscriptionExists", {
  id: Schema.Number,
  callbackUrl: Schema.String
}) {
  /** @since 0.3.0 */
  override get message(): string {
    return `this app already has push subscription ${this.id}, to ${this.callbackUrl}; Strava allows one per app. ` +
      `Delete it first (strava-auth webhook delete) to subscribe another callback.`
  }
}

/**
 * Strava could not validate the callback (its GET with `hub.challenge` did not get the challenge back in time).
 *
 * @since 0.3.0
 * @category errors
 */
export class CallbackRefused extends Schema.TaggedError<CallbackRefused>()("CallbackRefused", {
  callbackUrl: Schema.String
}) {
  /** @since 0.3.0 */
  override get message(): string {
    return `Strava could not validate ${this.callbackUrl}: it must answer Strava's GET (hub.mode=subscribe, ` +
      `hub.challenge, hub.verify_token) with 200 and {"hub.challenge": ...} within two seconds, with the same ` +
      `verify token. Is the app's webhook route running and reachable from the internet?`
  }
}

/**
 * The app's subscription, if it has one.
 *
 * @since 0.3.0
 * @category programs
 */
export const view: Effect.Effect<Option.Option<PushSubscription>, StravaError.StravaError, StravaOAuth> = Effect
  .flatMap(StravaOAuth, (oauth) => Effect.map(oauth.listSubscriptions, (list) => Option.fromNullable(list[0])))
  .pipe(Effect.withSpan("PushSubscription.view"))

/**
 * Subscribes `callbackUrl`, unless the app is subscribed to it already: the subscription and whether it was
 * created now.
 *
 * @since 0.3.0
 * @category programs
 */
export const create = (options: {
  readonly callbackUrl: string
  readonly verifyToken: Redacted.Redacted<string>
}): Effect.Effect<
  { readonly id: number; readonly callbackUrl: string; readonly created: boolean },
  StravaError.StravaError | SubscriptionExists | CallbackRefused,
  StravaOAuth
> =>
  Effect.gen(function*() {
    const oauth = yield* StravaOAuth
    const existing = yield* view
    if (Option.isSome(existing)) {
      if (existing.value.callback_url === options.callbackUrl) {
        return { id: existing.value.id, callbackUrl: existing.value.callback_url, created: false }
      }
      return yield* new SubscriptionExists({ id: existing.value.id, callbackUrl: existing.value.callback_url })
    }
    const id = yield* oauth.createSubscription(options).pipe(
      Effect.catchIf(
        (error) => error._tag === "UnexpectedResponse" && error.status === 400 && /callback url/i.test(error.detail),
        () => Effect.fail(new CallbackRefused({ callbackUrl: options.callbackUrl }))
      )
    )
    return { id, callbackUrl: options.callbackUrl, created: true }
  }).pipe(Effect.withSpan("PushSubscription.create"))

/**
 * Deletes the subscription `id`, or the app's one when no id is given: the id deleted, or `None` when there
 * was none.
 *
 * @since 0.3.0
 * @category programs
 */
export const remove = (
  id?: number
): Effect.Effect<Option.Option<number>, StravaError.StravaError, StravaOAuth> =>
  Effect.gen(function*() {
    const oauth = yield* StravaOAuth
    const target = id ?? Option.getOrUndefined(Option.map(yield* view, (s) => s.id))
    if (target === undefined) return Option.none()
    yield* oauth.deleteSubscription(target)
    return Option.some(target)
  }).pipe(Effect.withSpan("PushSubscription.remove"))
