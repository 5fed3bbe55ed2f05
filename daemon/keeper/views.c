/* The keeper's views of its VMs: a tenant's private read and the operator's
 * table. */
#include <fcntl.h>
#include <unistd.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/keeper/keeper_impl.h"
#include "daemon/log.h"
#include "lib/errors.h"
#include "lib/json_u64.h"


static json_t *console_tail(const char *path)
{
	char buf[CONSOLE_TAIL + 1];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return json_string("");
	off_t size = lseek(fd, 0, SEEK_END);
	off_t from = size > CONSOLE_TAIL ? size - CONSOLE_TAIL : 0;
	ssize_t got = pread(fd, buf, CONSOLE_TAIL, from);
	close(fd);
	if (got < 0)
		got = 0;
	buf[got] = '\0';
	/* Text to read: a serial console ends its lines with CR LF and draws
	 * with escape sequences (ESC [ ... final byte), which are dropped;
	 * jansson refuses invalid UTF-8 and a console log can hold anything,
	 * so any other control byte or non-ASCII byte reads '?'. */
	ssize_t j = 0;
	for (ssize_t i = 0; i < got; i++) {
		unsigned char ch = (unsigned char)buf[i];

		if (ch == '\r')
			continue;
		if (ch == 0x1b && i + 1 < got && buf[i + 1] == '[') {
			for (i += 2; i < got && ((unsigned char)buf[i] < 0x40 ||
						 (unsigned char)buf[i] > 0x7e); i++)
				;
			continue;
		}
		buf[j++] = ch >= 0x80 || (ch < 0x20 && ch != '\n' && ch != '\t') ? '?' : (char)ch;
	}
	buf[j] = '\0';
	return json_string(buf);
}

/* How the tenant logs in: host, port and user, and the guest's host keys
 * once cloud-init has printed them on the console. */
static json_t *ssh_json(struct keeper *k, const struct prov_vm_info *info)
{
	struct prov_host_keys *hk = calloc(1, sizeof(*hk));
	json_t *keys = json_array(), *fps = json_array();

	if (hk && prov_host_keys_read(info->console_log, hk) == 0) {
		for (size_t i = 0; i < hk->n_keys; i++)
			json_array_append_new(keys, json_string(hk->keys[i]));
		for (size_t i = 0; i < hk->n_fingerprints; i++)
			json_array_append_new(fps, json_string(hk->fingerprints[i]));
	}
	free(hk);
	return json_pack("{s:s, s:i, s:s, s:o, s:o}", "host", k->d.cfg->public_host,
			 "port", info->ssh_port, "user", info->ssh_user,
			 "host_keys", keys, "host_key_fingerprints", fps);
}

int keeper_vm_private(struct keeper *k, const uint8_t lease_id[LEASE_ID_LEN], json_t **out)
{
	struct prov_vm_info *info = malloc(sizeof(*info));

	if (!info)
		return TALLY_E_NOMEM;
	if (prov_lookup(k->prov, lease_id, info)) {
		free(info);
		return TALLY_E_NOTFOUND;
	}
	const char *net = k->d.cfg->network;
	*out = json_pack("{s:s, s:s, s:s, s:b, s:s, s:s, s:o, s:o}", "domain", info->name,
			 "hostname", info->hostname, "network", net, "running", info->running,
			 "state", info->state,
			 "address",
			 !strcmp(net, "none") ? "none (no network)" :
			 !strcmp(net, "user") ? (info->ssh_port ? "user-mode network, SSH forwarded" :
						 "user-mode network, no forwarded port") :
						"NAT, see the guest's DHCP lease",
			 "ssh", info->ssh_port ? ssh_json(k, info) : json_null(),
			 "console", console_tail(info->console_log));
	free(info);
	return *out ? 0 : TALLY_E_NOMEM;
}

json_t *keeper_vms_json(struct keeper *k)
{
	json_t *arr = json_array();
	uint64_t now = keeper_now();

	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < k->nkept; i++) {
		struct kept *e = &k->kept[i];
		struct meter_sample s;
		struct meter_share sh;
		struct lease l;
		if (!e->metered || meter_vm_read(k->meter, e->vm, &s) ||
		    ledger_lease(k->d.ledger, e->id, &l))
			continue;
		bool known = meter_rate_update(&e->rate, &s.total, &sh);
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I, s:I, s:o, s:o, s:o, s:o,"
						     " s:o, s:o, s:o}",
						     "lease", e->hex, "domain", e->vm, "state",
						     lease_state_name(l.state),
						     "vcpus", (json_int_t)l.contract.vm.vcpus,
						     "memory_mib",
						     (json_int_t)l.contract.vm.memory_mib,
						     "cpu_ns", json_u64(s.total.cpu_ns),
						     "cpu_pct", known ? json_real(sh.cpu_pct) : json_null(),
						     "run_delay_ns", json_u64(s.total.run_delay_ns),
						     "run_delay_pct",
						     known ? json_real(sh.wait_pct) : json_null(),
						     "mem_bytes", json_u64(s.mem_current_bytes),
						     "mem_peak_bytes", json_u64(s.mem_peak_bytes),
						     "gpu_ns", json_u64(l.gpu_ns)));
	}
	pthread_mutex_unlock(&k->lock);
	return json_pack("{s:o, s:o}", "time_ns", json_u64(now), "vms", arr);
}

size_t keeper_vm_count(struct keeper *k)
{
	pthread_mutex_lock(&k->lock);
	size_t n = k->nkept;
	pthread_mutex_unlock(&k->lock);
	return n;
}

