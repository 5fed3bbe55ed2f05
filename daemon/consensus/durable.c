/* Making a file's name durable (see durable.h). */
#include "daemon/consensus/durable.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/errors.h"

int durable_dir_of(const char *path)
{
	char *copy = strdup(path);
	int fd, rc = 0;

	if (!copy)
		return TALLY_E_NOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return TALLY_E_IO;
	if (fsync(fd) != 0)
		rc = TALLY_E_IO;
	close(fd);
	return rc;
}

int durable_write_at(int fd, const uint8_t *b, size_t n, uint64_t off)
{
	while (n) {
		ssize_t k = pwrite(fd, b, n, (off_t)off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			if (k == 0)
				errno = ENOSPC;
			return -1;
		}
		b += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}
