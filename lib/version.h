/* The version of tally's programs and packages: tally --version, tallyd
 * --version, the man pages, and debian/changelog (checked by make deb). */
#ifndef TALLY_VERSION_H
#define TALLY_VERSION_H

#define TALLY_VERSION "0.1.0"

#endif
