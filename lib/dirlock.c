/* A directory one process owns at a time (see dirlock.h). */
#include "lib/dirlock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "lib/errors.h"

pid_t dir_lock_holder(const char *dir, char comm[16])
{
	char line[256], path[64];
	struct stat st;
	FILE *f;
	pid_t found = 0;

	comm[0] = '\0';
	if (stat(dir, &st) || !(f = fopen("/proc/locks", "re")))
		return 0;
	/* "1: FLOCK  ADVISORY  WRITE 1234 00:1e:5678 0 EOF" */
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned maj, mn;
		unsigned long long ino;
		int pid;

		if (!strstr(line, "FLOCK") ||
		    sscanf(line, "%*s %*s %*s %*s %d %x:%x:%llu", &pid, &maj, &mn,
			   &ino) != 4)
			continue;
		if (makedev(maj, mn) == st.st_dev && ino == st.st_ino)
			found = pid;
	}
	fclose(f);
	if (found) {
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)found);
		f = fopen(path, "re");
		if (f) {
			if (fgets(comm, 16, f))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(f);
		}
	}
	return found;
}

int dir_lock(const char *dir, int *fd, pid_t *holder, char comm[16], char *why)
{
	*holder = 0;
	comm[0] = '\0';
	*fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0)
		return why_set(why, TALLY_E_IO, "cannot open %s: %s", dir, strerror(errno));
	if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	close(*fd);
	*fd = -1;
	if (errno != EWOULDBLOCK)
		return why_set(why, TALLY_E_IO, "cannot lock %s: %s", dir, strerror(errno));
	*holder = dir_lock_holder(dir, comm);
	return TALLY_E_STATE;
}
