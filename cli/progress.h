/* What a long operation has done so far, on one line of stderr, redrawn in
 * place: shown only when stderr is a terminal and the output is not --json,
 * so a pipe or a log gets nothing but the result. */
#ifndef TALLY_CLI_PROGRESS_H
#define TALLY_CLI_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct progress {
	bool on;
	const char *what;       /* "blocks fetched" */
	uint64_t total;         /* 0: not known */
	uint64_t last_ms;       /* monotonic, of the last redraw */
};

/* quiet: --json or the caller's own reason; otherwise on when stderr is a
 * terminal. */
void progress_start(struct progress *p, const char *what, uint64_t total, bool quiet);
/* "tally: 1200/5000 blocks fetched (24%)", at most ten times a second and
 * always at the total. */
void progress_step(struct progress *p, uint64_t done);
/* One line of text in place of the count ("lease 7f3a... booting"). */
void progress_text(struct progress *p, const char *text);
/* Clears the line, so what follows starts on a clean one. */
void progress_end(struct progress *p);
/* Clears a progress line on the terminal, if one is shown, before a message
 * (err() calls it); the next step draws it again below the message. */
void progress_interrupt(void);

/* ISO 8601 in the local time zone with its offset, to the millisecond:
 * "2025-11-30T09:12:03.250+01:00"; ns is Unix time in nanoseconds. buf
 * holds at least 40 bytes. Human output only: --json keeps the chain's
 * integers. */
const char *fmt_local_time(uint64_t ns, char *buf, size_t cap);

#endif
