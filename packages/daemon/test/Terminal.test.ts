import { assert, describe, it } from "@effect/vitest"
import * as FastCheck from "effect/FastCheck"

import { sanitizeForTerminal } from "../src/Terminal.js"

const controls = /[\x00-\x1f\x7f-\x9f]/

describe("sanitizeForTerminal", () => {
  it("removes whole escape sequences, 7- and 8-bit, leaving no parameter bytes behind", () => {
    const cases: Array<[string, string]> = [
      ["\x1b[31mRed\x1b[0m", "Red"], // CSI: colour
      ["\x1b[2J\x1b[1;1HTop", "Top"], // CSI: clear screen, move the cursor
      ["\x9b2JC1", "C1"], // 8-bit CSI
      ["\x1b]0;owned\x07Title", "Title"], // OSC ended by BEL: window title
      ["\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "link"], // OSC 8 hyperlink ended by ST
      ["\x9d0;owned\x9cx", "x"], // 8-bit OSC and ST
      ["\x1bP+q544e\x1b\\after", "after"], // DCS (a terminal query)
      ["\x1b(0box\x1b(B", "box"], // charset switches
      ["\x1b7\x1b8saved", "saved"], // save/restore cursor
      ["open\x1b]0;never ended", "open"] // an unterminated string swallows the rest, as a terminal would
    ]
    for (const [input, expected] of cases) {
      assert.strictEqual(sanitizeForTerminal(input), expected, JSON.stringify(input))
    }
  })

  it("removes C0 (newline and tab included), DEL and C1 controls", () => {
    assert.strictEqual(sanitizeForTerminal("a\r\nb\tc\x00d\x07e\x08f\x7fg\x85h\x80i"), "abcdefghi")
  })

  it("keeps printable text, accents and other scripts", () => {
    for (const text of ["Marianne Mock", "Zoë Ångström-Ñúñez", "山田 太郎", "Ελένη", "Jo 🚴"]) {
      assert.strictEqual(sanitizeForTerminal(text), text)
    }
  })

  it("never leaves a control character, whatever the input", () => {
    FastCheck.assert(
      FastCheck.property(
        FastCheck.array(
          FastCheck.oneof(
            FastCheck.constantFrom("\x1b", "\x1b[", "\x1b]", "\x9b", "\x9d", "\x07", "\x9c", "\\", ";", "[", "m"),
            FastCheck.string()
          )
        ),
        (parts) => !controls.test(sanitizeForTerminal(parts.join("")))
      )
    )
  })
})
