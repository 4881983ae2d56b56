/**
 * Text from elsewhere (Strava, a redirect, a token file) made safe to print on a terminal.
 *
 * A name such as `"\x1b]0;pwned\x07Eve"` would otherwise retitle the window, recolour the screen, move the
 * cursor over earlier lines or, on some terminals, answer back into the input. Whole escape sequences go
 * first (so `"\x1b[31m"` leaves nothing, not `"[31m"`), then every remaining C0 control (newline and tab
 * included: a field printed on one line stays on one line), DEL and C1 control.
 *
 * @since 0.1.0
 */

// Built from strings so the source holds no raw control characters.
const sequences = new RegExp(
  [
    // CSI: ESC [ or 0x9B, parameters, intermediates, one final byte.
    "(?:\\x1b\\[|\\x9b)[\\x30-\\x3f]*[\\x20-\\x2f]*[\\x40-\\x7e]",
    // OSC, DCS, SOS, PM, APC: a string up to BEL or ST (ESC \ or 0x9C), or to the end when unterminated.
    "(?:\\x1b[\\]PX^_]|[\\x90\\x98\\x9d\\x9e\\x9f])[\\s\\S]*?(?:\\x07|\\x1b\\\\|\\x9c|$)",
    // Any other escape: ESC, intermediates, one final byte.
    "\\x1b[\\x20-\\x2f]*[\\x30-\\x7e]"
  ].join("|"),
  "g"
)
const controls = new RegExp("[\\x00-\\x1f\\x7f-\\x9f]", "g")

/**
 * `text` without terminal escape sequences and control characters (C0, DEL, C1), for printing values that
 * did not come from the user (athlete names, server messages) on a terminal.
 *
 * @since 0.1.0
 * @category formatting
 */
export const sanitizeForTerminal = (text: string): string => text.replace(sequences, "").replace(controls, "")
