/* Making a file's name durable (see durable.h). */
#include "daemon/consensus/durable.h"

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
