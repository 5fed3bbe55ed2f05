/* tallyd's INI configuration (daemon/config.h), read through inih from a
 * file like an operator's: a refusal names the line; an accepted file
 * gives a configuration within its documented limits. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "contracts/contract.h"
#include "daemon/config.h"
#include "lib/errors.h"
#include "tests/fuzz/fuzz.h"

static struct config c;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64], why[WHY_MAX] = "";
	int fd = memfd_create("tallyd.conf", MFD_CLOEXEC);

	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	memset(&c, 0, sizeof(c));
	int rc = config_load(&c, path, why);
	close(fd);
	if (rc) {
		fuzz_require(why[0], "configuration refused (%d) without a reason", rc);
		return 0;
	}
	fuzz_require(c.nimages <= CONFIG_IMAGES_MAX && c.ngpus <= CONFIG_GPUS_MAX,
		     "%zu images, %zu GPUs", c.nimages, c.ngpus);
	for (size_t i = 0; i < c.nimages; i++)
		fuzz_require(fuzz_image_ok(c.images[i].name), "image name '%s'",
			     c.images[i].name);
	fuzz_require(c.api.max_connections_per_ip <= c.api.max_connections,
		     "more connections per address than in all");
	fuzz_require(!c.api.tls_cert[0] == !c.api.tls_key[0], "a TLS certificate without key");
	fuzz_require(c.interval_s >= CONTRACT_INTERVAL_S_MIN &&
		     c.interval_s <= CONTRACT_INTERVAL_S_MAX, "metering interval %u",
		     c.interval_s);
	return 0;
}
