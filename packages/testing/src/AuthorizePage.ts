/**
 * The mock's authorize page: the app's name, the requested scopes as checkboxes, Authorize and Cancel. It
 * posts to `/oauth/accept`, which redirects exactly as Strava does.
 *
 * Strava signs in one athlete per browser; the mock has many, so the page lets a person (or a test) choose
 * who signs in: `<select id="athlete-select" name="athlete_id">`, posted with the form.
 *
 * @since 0.1.0
 */
import type { Athlete, AuthorizeRequest } from "./Simulator.js"

const escape = (value: string): string =>
  value.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" })[c]!)

const descriptions: Record<string, string> = {
  "read": "View data about your public segments and routes",
  "read_all": "View data about your private routes, segments and events",
  "profile:read_all": "View your complete Strava profile",
  "profile:write": "Update your weight and Functional Threshold Power (FTP)",
  "activity:read": "View data about your activities",
  "activity:read_all": "View data about your private activities",
  "activity:write": "Upload your activities from the app to Strava"
}

/**
 * Renders the page for a checked authorize request, signed in as `selected` (an id among `athletes`, which
 * the page lists for choosing another).
 *
 * @since 0.1.0
 * @category rendering
 */
export const render = (request: AuthorizeRequest, athletes: ReadonlyArray<Athlete>, selected: number): string => {
  const name = (athlete: Athlete) => `${athlete.firstname} ${athlete.lastname}`
  const current = athletes.find((athlete) => athlete.id === selected) ?? athletes[0]
  const options = athletes.map((athlete) =>
    `<option value="${athlete.id}"${athlete.id === current?.id ? " selected" : ""}>${
      escape(name(athlete))
    } (${athlete.id})</option>`
  ).join("\n")
  const hidden = (name: string, value: string) => `<input type="hidden" name="${name}" value="${escape(value)}">`
  const boxes = request.scopes.map((scope) =>
    `<li><label><input type="checkbox" name="grant" value="${escape(scope)}" checked${
      scope === "read" ? " disabled" : ""
    }> ${escape(descriptions[scope] ?? scope)} <code>${escape(scope)}</code></label></li>`
  ).join("\n")
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Authorize ${escape(request.app.name)} | Strava (mock)</title>
<style>body{font-family:sans-serif;max-width:36rem;margin:3rem auto}button{font-size:1rem;padding:.5rem 1.5rem}
#authorize{background:#fc4c02;color:#fff;border:0}ul{list-style:none;padding:0}li{margin:.4rem 0}</style></head>
<body>
<h1>Authorize <span id="app-name">${escape(request.app.name)}</span> to connect to Strava</h1>
<p>Signed in as <strong id="athlete">${current === undefined ? "" : escape(name(current))}</strong> (mock Strava).</p>
<form method="post" action="/oauth/accept">
<p><label for="athlete-select">Sign in as</label>
<select id="athlete-select" name="athlete_id">
${options}
</select></p>
${hidden("client_id", request.app.clientId)}
${hidden("redirect_uri", request.redirectUri)}
${hidden("scope", request.scopes.join(","))}
${hidden("state", request.state)}
${hidden("approval_prompt", request.approvalPrompt)}
${hidden("response_type", "code")}
<ul id="scopes">
${boxes}
</ul>
<button type="submit" id="authorize" name="decision" value="authorize">Authorize</button>
<button type="submit" id="cancel" name="decision" value="cancel">Cancel</button>
</form>
</body>
</html>
`
}
