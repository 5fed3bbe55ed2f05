/* The files the provisioner makes for a lease: its disk, its cloud-init
 * seed and its console log, all named after the domain in the state dir. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/provision/provision_impl.h"
#include "lib/codec.h"
#include "lib/errors.h"

extern char **environ;

#define GIB (1024ULL * 1024 * 1024)

void prov_file_path(const struct prov *p, const char *name, enum prov_file which,
		    char out[PROV_PATH_MAX])
{
	static const char *const suffix[] = {
		[PROV_FILE_DISK] = ".qcow2",
		[PROV_FILE_SEED] = ".seed.iso",
		[PROV_FILE_SEED_DIR] = ".seed.d",
		[PROV_FILE_CONSOLE] = ".console.log",
	};

	snprintf(out, PROV_PATH_MAX, "%s/%s%s", p->state_dir, name, suffix[which]);
}

int prov_mkdir_p(const char *dir, char *why)
{
	char path[PROV_PATH_MAX];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(path))
		return why_set(why, TALLY_E_INVALID, "directory path '%s' is empty or too long", dir);
	memcpy(path, dir, n + 1);
	for (char *s = path + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(path, 0755) && errno != EEXIST)
			return why_set(why, TALLY_E_IO, "cannot make %s: %s", path, strerror(errno));
		*s = '/';
	}
	if (mkdir(path, 0755) && errno != EEXIST)
		return why_set(why, TALLY_E_IO, "cannot make %s: %s", path, strerror(errno));
	return 0;
}

/* Runs argv[0] (searched in PATH) and waits. On failure, why gets the tool's
 * last line of output. */
static int run_tool(char *const argv[], char *why)
{
	posix_spawn_file_actions_t fa;
	char out[2048];
	size_t len = 0;
	int fds[2], status, err = 0;
	pid_t pid;
	ssize_t r;

	if (pipe2(fds, O_CLOEXEC))
		return why_set(why, TALLY_E_IO, "pipe: %s", strerror(errno));
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
	err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (err) {
		close(fds[0]);
		return why_set(why, TALLY_E_IO, "cannot run %s: %s", argv[0], strerror(err));
	}
	while ((r = read(fds[0], out + len, sizeof(out) - 1 - len)) > 0 ||
	       (r < 0 && errno == EINTR)) {
		if (r > 0)
			len += (size_t)r;
		if (len == sizeof(out) - 1)
			len = 0;   /* keep the tail: the error is usually last */
	}
	close(fds[0]);
	out[len] = '\0';
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	while (len && (out[len - 1] == '\n' || out[len - 1] == '\r'))
		out[--len] = '\0';
	{
		char *last = strrchr(out, '\n');

		return why_set(why, TALLY_E_IO, "%s failed: %s", argv[0],
				 last ? last + 1 : (len ? out : "no output"));
	}
}

/* The virtual size of a base disk: a qcow2 header says it; a raw file is
 * its own size. */
static int base_disk_size(const struct prov_image *img, uint64_t *size, char *why)
{
	uint8_t hdr[32];
	struct stat st;
	int fd = open(img->disk_path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return why_set(why, TALLY_E_IO, "image '%s': cannot open %s: %s",
				 img->name, img->disk_path, strerror(errno));
	if (strcmp(img->disk_format, "raw") == 0) {
		int err = fstat(fd, &st);

		close(fd);
		if (err)
			return why_set(why, TALLY_E_IO, "image '%s': %s", img->name, strerror(errno));
		*size = (uint64_t)st.st_size;
		return 0;
	}
	n = pread(fd, hdr, sizeof(hdr), 0);
	close(fd);
	if (n != sizeof(hdr) || memcmp(hdr, "QFI\xfb", 4) != 0)
		return why_set(why, TALLY_E_IO, "image '%s': %s is not a qcow2 file",
				 img->name, img->disk_path);
	*size = 0;
	for (int i = 24; i < 32; i++)
		*size = (*size << 8) | hdr[i];
	return 0;
}

int prov_check_disk_size(const struct prov_image *img, uint32_t disk_gib, char *why)
{
	uint64_t base = 0;
	int err;

	if (!img->disk_path[0] || disk_gib == 0)
		return 0;
	err = base_disk_size(img, &base, why);
	if (err)
		return err;
	if ((uint64_t)disk_gib * GIB < base)
		return why_set(why, TALLY_E_INVALID,
				 "image '%s' has a %.1f GiB disk; the lease's %u GiB cannot hold it",
				 img->name, (double)base / GIB, disk_gib);
	return 0;
}

int prov_make_disk(const struct prov *p, const struct prov_image *img,
		   const char *name, uint32_t disk_gib, bool *made, char *why)
{
	char path[PROV_PATH_MAX], size[32];
	char *argv[12];
	int i = 0;

	*made = false;
	if (!img->disk_path[0] && disk_gib == 0)
		return 0;
	prov_file_path(p, name, PROV_FILE_DISK, path);
	argv[i++] = "qemu-img";
	argv[i++] = "create";
	argv[i++] = "-q";
	argv[i++] = "-f";
	argv[i++] = "qcow2";
	if (img->disk_path[0]) {
		argv[i++] = "-b";
		argv[i++] = (char *)img->disk_path;
		argv[i++] = "-F";
		argv[i++] = (char *)img->disk_format;
	}
	argv[i++] = path;
	if (disk_gib) {
		snprintf(size, sizeof(size), "%uG", disk_gib);
		argv[i++] = size;
	}
	argv[i] = NULL;
	*made = true;
	return run_tool(argv, why);
}

static int write_file(const char *path, const char *text, char *why)
{
	FILE *f = fopen(path, "we");

	if (!f)
		return why_set(why, TALLY_E_IO, "cannot write %s: %s", path, strerror(errno));
	fputs(text, f);
	if (fclose(f))
		return why_set(why, TALLY_E_IO, "cannot write %s: %s", path, strerror(errno));
	return 0;
}

static void remove_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;

	if (!d) {
		unlink(path);
		return;
	}
	while ((e = readdir(d))) {
		char sub[PROV_PATH_MAX];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		unlink(sub);
	}
	closedir(d);
	rmdir(path);
}

/* cloud-init's user-data. The hostname and the key hold only characters
 * that need no quoting in a YAML double-quoted scalar (contracts/access.c),
 * so quoting them is enough. */
static char *user_data(const char *hostname, const char *ssh_user, const char *ssh_key)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	fprintf(f, "#cloud-config\nhostname: \"%s\"\nmanage_etc_hosts: true\n", hostname);
	if (ssh_user[0]) {
		fprintf(f, "users:\n  - name: \"%s\"\n    shell: /bin/bash\n"
			"    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n    lock_passwd: true\n", ssh_user);
		if (ssh_key[0])
			fprintf(f, "    ssh_authorized_keys:\n      - \"%s\"\n", ssh_key);
	} else if (ssh_key[0]) {
		fprintf(f, "ssh_authorized_keys:\n  - \"%s\"\n", ssh_key);
	}
	if (fclose(f)) {
		free(text);
		return NULL;
	}
	return text;
}

/* cloud-init NoCloud: a volume labelled "cidata" with user-data and
 * meta-data at its root. */
int prov_make_seed(const struct prov *p, const char *name,
		   const uint8_t lease_id[LEASE_ID_LEN], const char *hostname,
		   const char *ssh_user, const char *ssh_key, char *why)
{
	char dir[PROV_PATH_MAX], iso[PROV_PATH_MAX], ud[PROV_PATH_MAX + 16],
	     md[PROV_PATH_MAX + 16], hex[2 * LEASE_ID_LEN + 1];
	char *user = NULL, *meta = NULL;
	int err;

	prov_file_path(p, name, PROV_FILE_SEED_DIR, dir);
	prov_file_path(p, name, PROV_FILE_SEED, iso);
	snprintf(ud, sizeof(ud), "%s/user-data", dir);
	snprintf(md, sizeof(md), "%s/meta-data", dir);
	hex_encode(lease_id, LEASE_ID_LEN, hex);
	if (mkdir(dir, 0700) && errno != EEXIST)
		return why_set(why, TALLY_E_IO, "cannot make %s: %s", dir, strerror(errno));
	user = user_data(hostname, ssh_user, ssh_key);
	if (!user ||
	    asprintf(&meta, "instance-id: tally-%s\nlocal-hostname: %s\n", hex, hostname) < 0) {
		meta = NULL;
		err = why_set(why, TALLY_E_NOMEM, "out of memory making the seed");
		goto out;
	}
	err = write_file(ud, user, why);
	if (!err)
		err = write_file(md, meta, why);
	if (!err) {
		char *argv[] = { "genisoimage", "-quiet", "-output", iso, "-volid", "cidata",
				 "-joliet", "-rock", ud, md, NULL };

		err = run_tool(argv, why);
	}
out:
	free(user);
	free(meta);
	remove_tree(dir);
	if (err)
		unlink(iso);
	return err;
}

/* Moves one console log into the archive, named after the lease (or the
 * domain when the lease is unknown) and the time. Falls back to copying
 * when the archive is on another file system. */
static void archive_log(const struct prov *p, const char *path, const char *tag,
			const char *suffix)
{
	char dst[PROV_PATH_MAX];
	char buf[65536];
	int in, out;
	ssize_t n;

	snprintf(dst, sizeof(dst), "%s/%s-%lld.console.log%s", p->archive_dir, tag,
		 (long long)time(NULL), suffix);
	if (rename(path, dst) == 0 || errno != EXDEV)
		return;
	in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return;
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	while (out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			break;
	if (out >= 0)
		close(out);
	close(in);
}

unsigned prov_remove_files(const struct prov *p, const char *name,
			   const uint8_t *lease_id)
{
	char path[PROV_PATH_MAX], tag[2 * LEASE_ID_LEN + 1];
	size_t nlen = strlen(name);
	unsigned removed = 0;
	struct dirent *e;
	DIR *d;

	if (lease_id)
		hex_encode(lease_id, LEASE_ID_LEN, tag);
	else
		snprintf(tag, sizeof(tag), "%s", name);
	d = opendir(p->state_dir);
	if (!d)
		return 0;
	/* Everything "<name>.*": disk, seed, the seed's scratch dir and the
	 * console log with any copies virtlogd rotated (".0", ".1", ...). */
	while ((e = readdir(d))) {
		const char *rest = e->d_name + nlen;

		if (strncmp(e->d_name, name, nlen) != 0 || *rest != '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", p->state_dir, e->d_name);
		if (p->archive_dir && strncmp(rest, ".console.log", 12) == 0)
			archive_log(p, path, tag, rest + 12);
		remove_tree(path);
		removed++;
	}
	closedir(d);
	return removed;
}
