// The baseline: a bare node:http server on a Unix socket answering a constant token (Node's ceiling).
import * as Fs from "node:fs"
import * as Http from "node:http"

const socket = process.argv[2]
const token = "0123456789abcdef0123456789abcdef01234567"
Fs.rmSync(socket, { force: true })
const server = Http.createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "content-length": token.length })
  res.end(token)
})
server.listen({ path: socket })
process.on("SIGTERM", () => server.close(() => process.exit(0)))
