/* tallyd's configuration, read through one table of its keys.
 *
 * config_keys[] names every section and key tallyd accepts, with its type,
 * range, default and meaning. The parser, the defaults, tallyd.conf(5),
 * the commented tallyd.conf the package installs and the table in
 * docs/OPERATING.md are all made from it (man/gen.c), so none of them can
 * drift from what the node reads. */
#include "daemon/config.h"

#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/codec.h"
#include "lib/crypto.h"
#include "lib/errors.h"

static int set_str(char *dst, size_t cap, const char *value)
{
	return (size_t)snprintf(dst, cap, "%s", value) < cap ? 0 : TALLY_E_TOOLONG;
}

static int set_u32(uint32_t *dst, const char *value, uint64_t min, uint64_t max)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(value, &end, 10);

	if (errno || end == value || *end || value[0] == '-' || v < min || v > max)
		return TALLY_E_RANGE;
	*dst = (uint32_t)v;
	return 0;
}

static int set_u64(uint64_t *dst, const char *value)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(value, &end, 10);

	if (errno || end == value || *end || value[0] == '-')
		return TALLY_E_RANGE;
	*dst = v;
	return 0;
}

/* "2.5" -> 2500; integers only, so the node's capacity arithmetic is exact. */
static int set_milli(uint32_t *dst, const char *value)
{
	unsigned whole = 0, frac = 0, digits = 0;
	const char *p = value;

	if (*p < '0' || *p > '9')
		return TALLY_E_RANGE;
	while (*p >= '0' && *p <= '9' && whole < 1000)
		whole = whole * 10 + (unsigned)(*p++ - '0');
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9' && digits < 3) {
			frac = frac * 10 + (unsigned)(*p++ - '0');
			digits++;
		}
		for (; digits < 3; digits++)
			frac *= 10;
	}
	if (*p || whole >= 1000 || (whole == 0 && frac == 0))
		return TALLY_E_RANGE;
	*dst = whole * 1000 + frac;
	return 0;
}

/* "MIN-MAX", two ports with MIN <= MAX. */
static int set_port_range(uint32_t *min, uint32_t *max, const char *value)
{
	char lo[8];
	size_t n = strcspn(value, "-");

	if (n == 0 || n >= sizeof(lo) || value[n] != '-')
		return TALLY_E_RANGE;
	memcpy(lo, value, n);
	lo[n] = '\0';
	if (set_u32(min, lo, 1, 65535) || set_u32(max, value + n + 1, *min, 65535))
		return TALLY_E_RANGE;
	return 0;
}

static int set_bool(int *dst, const char *value);

static int set_announce(void *base, const char *value)
{
	struct config *c = base;

	if (!strcmp(value, "auto")) {
		c->announce = -1;
		return 0;
	}
	return set_bool(&c->announce, value);
}

static int set_bool(int *dst, const char *value)
{
	if (!strcmp(value, "yes") || !strcmp(value, "true") || !strcmp(value, "1"))
		*dst = 1;
	else if (!strcmp(value, "no") || !strcmp(value, "false") || !strcmp(value, "0"))
		*dst = 0;
	else
		return TALLY_E_RANGE;
	return 0;
}

/* HOST:PORT or [V6]:PORT with a port of 1..65535; the host is resolved when
 * the node dials. */
static int addr_valid(const char *a)
{
	const char *colon = strrchr(a, ':');
	char *end;

	if (!colon || colon == a || strlen(a) >= CONFIG_ADDR_MAX || strpbrk(a, " \t/@"))
		return 0;
	if (a[0] == '[' && colon[-1] != ']')
		return 0;
	unsigned long port = strtoul(colon + 1, &end, 10);
	return colon[1] >= '0' && colon[1] <= '9' && !*end && port >= 1 && port <= 65535;
}

static int set_key(uint8_t out[32], const char *hex)
{
	if (strlen(hex) != 64 || hex_decode(hex, out, 32) || key_check(out))
		return TALLY_E_KEY;
	return 0;
}

/* --- keys with a setter of their own ----------------------------------------- */

static int set_node_listen(void *base, const char *v)
{
	struct config *c = base;

	if (!addr_valid(v))
		return TALLY_E_RANGE;
	return set_str(c->listen, sizeof(c->listen), v);
}

static int set_peers_listen(void *base, const char *v)
{
	struct config_peers *p = &((struct config *)base)->peers;

	if (*v && !addr_valid(v))
		return TALLY_E_RANGE;
	return set_str(p->listen, sizeof(p->listen), v);
}

static int set_peer(void *base, const char *v)
{
	struct config_peers *p = &((struct config *)base)->peers;
	struct config_peer *cp = &p->peers[p->npeers];
	const char *at = strchr(v, '@');

	if (p->npeers == CONFIG_PEERS_MAX)
		return TALLY_E_TOOLONG;
	memset(cp, 0, sizeof(*cp));
	if (at) {
		char hex[65];
		if (at - v != 64)
			return TALLY_E_KEY;
		memcpy(hex, v, 64);
		hex[64] = '\0';
		if (set_key(cp->key, hex))
			return TALLY_E_KEY;
		cp->has_key = 1;
		v = at + 1;
	}
	if (!addr_valid(v))
		return TALLY_E_RANGE;
	snprintf(cp->addr, sizeof(cp->addr), "%s", v);
	p->npeers++;
	return 0;
}

static int set_allow(void *base, const char *v)
{
	struct config_peers *p = &((struct config *)base)->peers;

	if (p->nallow == CONFIG_ALLOW_MAX)
		return TALLY_E_TOOLONG;
	if (set_key(p->allow[p->nallow], v))
		return TALLY_E_KEY;
	p->nallow++;
	return 0;
}

static int set_forward_ports(void *base, const char *v)
{
	struct config *c = base;

	return set_port_range(&c->forward_port_min, &c->forward_port_max, v);
}

static int set_gpu_class(void *base, const char *v)
{
	struct config_gpu *g = base;

	/* the provisioner's class names are at most 31 bytes */
	return strlen(v) < 32 ? set_str(g->class_name, sizeof(g->class_name), v) : TALLY_E_TOOLONG;
}

/* --- the table ----------------------------------------------------------------- */

/* Where a key's value goes: a field of struct config, or of one
 * [image.NAME] section's struct config_image. */
#define NODE(f) .offset = offsetof(struct config, f), .size = sizeof(((struct config *)0)->f)
#define IMAGE(f) .offset = offsetof(struct config_image, f), \
	.size = sizeof(((struct config_image *)0)->f)

const struct config_section config_sections[] = {
	{ "node", "The node itself: its files, its API address and its log." },
	{ "api", "How the HTTP API guards itself: TLS, and limits per client "
	  "(docs/OPERATING.md, \"The API: TLS and limits\"). A node that listens beyond "
	  "loopback without TLS refuses signed private reads from other hosts." },
	{ "peers", "The peer transport: TLS 1.3 between node keys (docs/OPERATING.md, "
	  "\"Networks\"). Without listen and peer lines the node runs alone." },
	{ "metering", "The metering interval the node offers, and where its CPU meter pins "
	  "its eBPF programs." },
	{ "libvirt", "How the node runs VMs: the libvirt connection, the domain type, the "
	  "VMs' network, and how much of the host it may promise." },
	{ "prices", "The node's offer, in micro-units per unit-second, announced on the chain "
	  "([provider]); the chain refuses contracts below it." },
	{ "provider", "The node's PROVIDER announcement on the chain (docs/OPERATING.md, "
	  "\"The provider announcement\"): made from the prices, the interval, the catalogue, "
	  "the GPUs and these keys; sent again whenever it differs from the chain's." },
	{ "image.NAME", "One image of the node's catalogue, leased by NAME (at most 32 "
	  "sections)." },
	{ "gpu.ADDRESS", "One GPU of the node, by its PCI address dddd:bb:ss.f in lowercase "
	  "hex (at most 16 sections)." },
	{ NULL, NULL },
};

const struct config_key config_keys[] = {
	{ .section = "node", .key = "data_dir", .type = CT_STR, NODE(data_dir),
	  .def = "/var/lib/tally", .value = "PATH",
	  .doc = "ledger store (`ledger.sqlite`), signer state (`signer_state`), consensus "
		 "WAL (`consensus.wal`), transactions accepted and not yet committed "
		 "(`mempool.log`), transactions received asynchronously and not yet "
		 "checked (`inbox.log`), VM files" },
	{ .section = "node", .key = "key", .type = CT_STR, NODE(key),
	  .def = "/etc/tally/node.pem", .value = "PATH",
	  .doc = "the node's Ed25519 key (PEM)" },
	{ .section = "node", .key = "genesis", .type = CT_STR, NODE(genesis),
	  .def = "/etc/tally/genesis.json", .value = "PATH",
	  .doc = "genesis file" },
	{ .section = "node", .key = "listen", .type = CT_FN, .set = set_node_listen,
	  .def = "127.0.0.1:7654", .value = "ADDR",
	  .doc = "API address (`host:port`, `[v6]:port`)" },
	{ .section = "node", .key = "log_level", .type = CT_CHOICE, NODE(log_level),
	  .choices = "error|warn|info|debug", .def = "info",
	  .doc = "the least severe messages logged" },
	{ .section = "node", .key = "log", .type = CT_CHOICE, NODE(log),
	  .choices = "stderr|syslog", .def = "stderr",
	  .doc = "where the log goes; on stderr under systemd, journald gets each line "
		 "with its priority" },
	{ .section = "node", .key = "block_interval_ms", .type = CT_U32, NODE(block_interval_ms),
	  .min = 50, .max = 600000, .def = "1000", .value = "MS",
	  .doc = "how long the validators wait after a block before the next height begins "
		 "(the consensus commit timeout); then they wait for transactions. Give every "
		 "validator of a network the same value" },
	{ .section = "node", .key = "min_free_mib", .type = CT_U32, NODE(min_free_mib),
	  .max = 1048576, .def = "64", .value = "MIB",
	  .doc = "free space `data_dir` keeps in reserve: below it the node takes no new "
		 "transaction (`507 disk_full`), so the ones it took can still commit" },

	{ .section = "api", .key = "tls_cert", .type = CT_STR, NODE(api.tls_cert),
	  .value = "PATH",
	  .example = "/etc/tally/api.crt",
	  .doc = "PEM certificate (chain): the API is HTTPS (TLS 1.2/1.3, GnuTLS); with "
		 "tls_key, both or neither" },
	{ .section = "api", .key = "tls_key", .type = CT_STR, NODE(api.tls_key),
	  .value = "PATH",
	  .example = "/etc/tally/api.key",
	  .doc = "the certificate's PEM private key (keep it 0600)" },
	{ .section = "api", .key = "max_connections", .type = CT_U32, NODE(api.max_connections),
	  .min = 1, .max = 65536, .def = "256", .value = "N",
	  .doc = "open API connections in all" },
	{ .section = "api", .key = "max_connections_per_ip", .type = CT_U32,
	  NODE(api.max_connections_per_ip),
	  .min = 1, .max = 65536, .def = "32", .value = "N",
	  .doc = "open API connections from one client address" },
	{ .section = "api", .key = "timeout_s", .type = CT_U32, NODE(api.timeout_s),
	  .min = 1, .max = 3600, .def = "15", .value = "S",
	  .doc = "a connection that sends nothing for this long is closed" },
	{ .section = "api", .key = "requests_per_s", .type = CT_U32, NODE(api.requests_per_s),
	  .max = 1000000, .def = "100", .value = "N",
	  .doc = "requests one address may make a second, sustained (429 beyond); `0` "
		 "turns the limit off" },
	{ .section = "api", .key = "request_burst", .type = CT_U32, NODE(api.request_burst),
	  .min = 1, .max = 1000000, .def = "200", .value = "N",
	  .doc = "requests one address may make at once" },

	{ .section = "peers", .key = "listen", .type = CT_FN,
	  .set = set_peers_listen, .value = "ADDR",
	  .example = "0.0.0.0:7700",
	  .doc = "address peers connect to (`host:port`); empty: this node only dials" },
	{ .section = "peers", .key = "peer", .type = CT_FN,
	  .set = set_peer, .value = "[KEY@]HOST:PORT", .flags = CK_REPEAT,
	  .example = "203.0.113.5:7700",
	  .doc = "a peer to dial, `KEY@HOST:PORT` (only that key is accepted there) or "
		 "`HOST:PORT` (any validator's or allowed key); at most 64" },
	{ .section = "peers", .key = "allow", .type = CT_FN,
	  .set = set_allow, .value = "KEY", .flags = CK_REPEAT,
	  .example = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
	  .doc = "a key that may connect without being dialed (a full node, a joining "
		 "operator); at most 128. Configured peers' keys and the validators' need "
		 "none" },
	{ .section = "peers", .key = "max_peers", .type = CT_U32, NODE(peers.max_peers),
	  .min = 1, .max = 1024, .def = "64", .value = "N",
	  .doc = "peers connected at once" },
	{ .section = "peers", .key = "max_msgs_per_s", .type = CT_U32, NODE(peers.max_msgs_per_s),
	  .min = 10, .max = 1000000, .def = "1000", .value = "N",
	  .doc = "messages one peer may send a second; more is a flood and the peer is "
		 "dropped" },
	{ .section = "peers", .key = "max_msg_burst", .type = CT_U32, NODE(peers.max_msg_burst),
	  .min = 10, .max = 1000000, .def = "4000", .value = "N",
	  .doc = "messages one peer may send at once (at least max_msgs_per_s)" },

	{ .section = "metering", .key = "interval_s", .type = CT_U32, NODE(interval_s),
	  .min = 1, .max = 3600, .def = "60", .value = "S",
	  .doc = "metering interval offered to tenants" },
	{ .section = "metering", .key = "pin_dir", .type = CT_STR, NODE(pin_dir),
	  .def = "/sys/fs/bpf/tally", .value = "PATH",
	  .doc = "where the CPU meter pins its eBPF programs and its state" },

	{ .section = "libvirt", .key = "uri", .type = CT_STR, NODE(uri),
	  .def = "qemu:///system", .value = "URI",
	  .doc = "libvirt connection" },
	{ .section = "libvirt", .key = "domain_type", .type = CT_CHOICE, NODE(domain_type),
	  .choices = "kvm|qemu", .def = "kvm",
	  .doc = "`kvm`, or `qemu` (TCG) where KVM can't run guests" },
	{ .section = "libvirt", .key = "network", .type = CT_CHOICE, NODE(network),
	  .choices = "nat|user|none", .def = "nat",
	  .doc = "`nat` (libvirt's default network, made when missing), `user` (QEMU's "
		 "user network, with forwarded SSH ports), `none`" },
	{ .section = "libvirt", .key = "forward_address", .type = CT_STR, NODE(forward_address),
	  .value = "IPV4",
	  .example = "127.0.0.1",
	  .doc = "`user`: the IPv4 address the forwarded ports listen on (the node's "
		 "public address; `127.0.0.1` in tests)" },
	{ .section = "libvirt", .key = "forward_ports", .type = CT_FN,
	  .set = set_forward_ports, .value = "MIN-MAX",
	  .example = "22000-22099",
	  .doc = "`user`: the ports a lease's SSH forward comes from; each lease of an "
		 "image with an `ssh_user` gets one, free again when the lease ends" },
	{ .section = "libvirt", .key = "public_host", .type = CT_STR, NODE(public_host),
	  .def_doc = "forward_address", .value = "HOST",
	  .example = "node1.example.org",
	  .doc = "the host name or address tenants are told to connect to" },
	{ .section = "libvirt", .key = "guest_outbound", .type = CT_BOOL, NODE(guest_outbound),
	  .def = "yes",
	  .doc = "`user`: whether guests may open connections out (`no`: QEMU's "
		 "`restrict=on`; the forwarded ports still work)" },
	{ .section = "libvirt", .key = "name_prefix", .type = CT_STR, NODE(name_prefix),
	  .def = "tally-", .value = "TEXT",
	  .doc = "domains are `<prefix><first 12 hex digits of the lease id>`" },
	{ .section = "libvirt", .key = "state_dir", .type = CT_STR, NODE(state_dir),
	  .def_doc = "<data_dir>/vms", .value = "PATH",
	  .example = "/var/lib/tally/vms",
	  .doc = "overlays, seeds, console logs" },
	{ .section = "libvirt", .key = "archive_dir", .type = CT_STR, NODE(archive_dir),
	  .def_doc = "<data_dir>/archive", .value = "PATH",
	  .example = "/var/lib/tally/archive",
	  .doc = "console logs of ended leases" },
	{ .section = "libvirt", .key = "overcommit_cpu", .type = CT_MILLI, NODE(overcommit_cpu_milli),
	  .def = "1.0", .value = "RATIO",
	  .doc = "vCPUs per host CPU" },
	{ .section = "libvirt", .key = "overcommit_mem", .type = CT_MILLI, NODE(overcommit_mem_milli),
	  .def = "1.0", .value = "RATIO",
	  .doc = "guest memory per host memory" },

	{ .section = "prices", .key = "vcpu_second", .type = CT_U64, NODE(prices.vcpu_second),
	  .def = "0", .value = "N",
	  .doc = "micro-units per vCPU-second" },
	{ .section = "prices", .key = "mem_gib_second", .type = CT_U64, NODE(prices.mem_gib_second),
	  .def = "0", .value = "N",
	  .doc = "micro-units per GiB-second of memory" },
	{ .section = "prices", .key = "gpu_second", .type = CT_U64, NODE(prices.gpu_second),
	  .def = "0", .value = "N",
	  .doc = "micro-units per GPU-second" },

	{ .section = "provider", .key = "announce", .type = CT_FN, .set = set_announce,
	  .def = "auto", .value = "auto|yes|no",
	  .doc = "announce the node as a provider (a PROVIDER transaction); `no` withdraws a "
		 "standing announcement; `auto` announces when the node runs VMs and withdraws "
		 "under `tallyd --no-vms`, so tenants never pick a node that cannot start "
		 "their lease; `yes` announces even then (leases driven by other means)" },
	{ .section = "provider", .key = "endpoint", .type = CT_STR, NODE(endpoint),
	  .def_doc = "http(s)://<listen>", .value = "URL",
	  .example = "https://node1.example.org:7654",
	  .doc = "the API address tenants reach the node at, as announced (1..256 printable "
		 "bytes, no spaces)" },
	{ .section = "provider", .key = "region", .type = CT_STR, NODE(region),
	  .value = "TEXT",
	  .example = "eu-west",
	  .doc = "free text for tenants choosing a provider (at most 64 printable bytes)" },
	{ .section = "provider", .key = "vcpus", .type = CT_U32, NODE(capacity_vcpus),
	  .min = 1, .max = UINT32_MAX, .def_doc = "host CPUs x overcommit_cpu", .value = "N",
	  .example = "16",
	  .doc = "the most vCPUs the node leases in all, and announces (at most host CPUs "
		 "x overcommit_cpu, libvirt's count)" },
	{ .section = "provider", .key = "memory_mib", .type = CT_U32, NODE(capacity_memory_mib),
	  .min = 1, .max = UINT32_MAX, .def_doc = "host memory x overcommit_mem", .value = "MIB",
	  .example = "65536",
	  .doc = "the most memory the node leases in all, and announces (at most host "
		 "memory x overcommit_mem, libvirt's figure; GPUs are the [gpu.*] sections)" },
	{ .section = "provider", .key = "sla_max_credit_ppm", .type = CT_U32,
	  NODE(sla_max_credit_ppm), .min = 0, .max = 1000000, .def = "500000", .value = "PPM",
	  .doc = "the largest SLA credit a contract may promise (its credit_ppm): announced, "
		 "so the chain refuses a lease promising more back on a breach; the node also "
		 "refuses, or closes as rejected, a lease opened under an earlier, looser "
		 "announcement" },
	{ .section = "provider", .key = "sla_min_delay_ppm", .type = CT_U32,
	  NODE(sla_min_delay_ppm), .min = 0, .max = 1000000, .def = "10000", .value = "PPM",
	  .doc = "the smallest run-queue delay a contract may allow (its max_delay_ppm): "
		 "below it every record would breach on a busy host; announced and enforced "
		 "as sla_max_credit_ppm" },

	{ .section = "image.NAME", .key = "path", .type = CT_STR, IMAGE(path),
	  .value = "PATH",
	  .example = "/var/lib/tally/images/debian-12.qcow2",
	  .doc = "a base disk image; each lease boots from its own qcow2 overlay on it, "
		 "sized by the contract's `disk_gib` and deleted at the end" },
	{ .section = "image.NAME", .key = "format", .type = CT_CHOICE, IMAGE(format),
	  .choices = "qcow2|raw", .def = "qcow2",
	  .doc = "the base disk's format" },
	{ .section = "image.NAME", .key = "kernel", .type = CT_STR, IMAGE(kernel),
	  .value = "PATH",
	  .example = "/var/lib/tally/images/debian-12.vmlinuz",
	  .doc = "a direct kernel boot (with `path`: of that disk, as the Debian guest "
		 "does)" },
	{ .section = "image.NAME", .key = "initrd", .type = CT_STR, IMAGE(initrd),
	  .value = "PATH",
	  .example = "/var/lib/tally/images/debian-12.initrd.img",
	  .doc = "the initramfs of the direct kernel boot" },
	{ .section = "image.NAME", .key = "cmdline", .type = CT_STR, IMAGE(cmdline),
	  .value = "TEXT",
	  .example = "root=/dev/vda rw console=ttyS0",
	  .doc = "the kernel command line of the direct kernel boot" },
	{ .section = "image.NAME", .key = "min_memory_mib", .type = CT_U32, IMAGE(min_memory_mib),
	  .min = 1, .max = UINT32_MAX, .def = "64", .value = "MIB",
	  .doc = "smallest memory a lease of this image may ask for" },
	{ .section = "image.NAME", .key = "gpu_classes", .type = CT_STR, IMAGE(gpu_classes),
	  .value = "LIST",
	  .example = "nvidia-a100",
	  .doc = "GPU classes the image supports (comma-separated)" },
	{ .section = "image.NAME", .key = "cloud_init", .type = CT_BOOL, IMAGE(cloud_init),
	  .def = "no",
	  .doc = "give the VM a NoCloud seed with the tenant's SSH key and the lease's "
		 "hostname" },
	{ .section = "image.NAME", .key = "ssh_user", .type = CT_STR, IMAGE(ssh_user),
	  .value = "USER",
	  .example = "debian",
	  .doc = "the login user cloud-init makes with the tenant's key (`debian` for "
		 "`make guest-debian`); leases of the image get a forwarded SSH port" },

	{ .section = "gpu.ADDRESS", .key = "class", .type = CT_FN,
	  .set = set_gpu_class, .value = "NAME",
	  .example = "nvidia-a100",
	  .doc = "the GPU's class (at most 31 characters), as contracts and images name it" },
	{ .section = NULL },
};

/* Sets one key of the table in base (a struct config, config_image or
 * config_gpu, as its section says). */
static int key_set(const struct config_key *k, void *base, const char *v)
{
	void *field = (char *)base + k->offset;

	switch (k->type) {
	case CT_STR:
		return set_str(field, k->size, v);
	case CT_CHOICE: {
		size_t n = strlen(v);
		for (const char *c = k->choices; *c;) {
			size_t len = strcspn(c, "|");
			if (len == n && !strncmp(c, v, n))
				return set_str(field, k->size, v);
			c += len + (c[len] == '|');
		}
		return TALLY_E_RANGE;
	}
	case CT_U32:
		return set_u32(field, v, k->min, k->max);
	case CT_U64:
		return set_u64(field, v);
	case CT_BOOL:
		return set_bool(field, v);
	case CT_MILLI:
		return set_milli(field, v);
	case CT_FN:
		return k->set(base, v);
	}
	return TALLY_E_INTERNAL;
}

/* The table's entry for section.key: sections "image.*" and "gpu.*" match
 * the table's "image.NAME" and "gpu.ADDRESS". */
static const struct config_key *key_find(const char *section, const char *key)
{
	const char *dot = strchr(section, '.');
	size_t n = dot ? (size_t)(dot - section) + 1 : strlen(section) + 1;

	for (const struct config_key *k = config_keys; k->section; k++)
		if (!strncmp(k->section, section, n) && (dot || !k->section[n - 1]) &&
		    !strcmp(k->key, key))
			return k;
	return NULL;
}

static bool section_known(const char *section)
{
	const char *dot = strchr(section, '.');
	size_t n = dot ? (size_t)(dot - section) + 1 : strlen(section) + 1;

	for (const struct config_section *s = config_sections; s->name; s++)
		if (!strncmp(s->name, section, n) && (dot || !s->name[n - 1]) &&
		    (!dot || strchr(s->name, '.')))
			return true;
	return false;
}

/* Every default of one scope ("" for the top-level sections, "image." or
 * "gpu.") set in base. The table's defaults are valid by construction:
 * tests/unit/test_config.c reads each one back. */
static void scope_defaults(void *base, const char *scope)
{
	size_t n = strlen(scope);

	for (const struct config_key *k = config_keys; k->section; k++) {
		bool in_scope = n ? !strncmp(k->section, scope, n) : !strchr(k->section, '.');
		if (in_scope && k->def)
			key_set(k, base, k->def);
	}
}

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	scope_defaults(c, "");
}

static struct config_image *image_section(struct config *c, const char *name)
{
	for (size_t i = 0; i < c->nimages; i++)
		if (!strcmp(c->images[i].name, name))
			return &c->images[i];
	if (c->nimages == CONFIG_IMAGES_MAX || !*name || strlen(name) > IMAGE_NAME_MAX)
		return NULL;
	struct config_image *im = &c->images[c->nimages++];
	snprintf(im->name, sizeof(im->name), "%s", name);
	scope_defaults(im, "image.");
	return im;
}

/* dddd:bb:ss.f in lowercase hex, as libvirt and sysfs spell it. */
static int pci_address_valid(const char *a)
{
	static const char shape[] = "xxxx:xx:xx.x";

	if (strlen(a) != sizeof(shape) - 1)
		return 0;
	for (size_t i = 0; shape[i]; i++) {
		int hex = (a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'f');
		if (shape[i] == 'x' ? !hex : a[i] != shape[i])
			return 0;
	}
	return 1;
}

static struct config_gpu *gpu_section(struct config *c, const char *addr)
{
	for (size_t i = 0; i < c->ngpus; i++)
		if (!strcmp(c->gpus[i].address, addr))
			return &c->gpus[i];
	if (c->ngpus == CONFIG_GPUS_MAX || strlen(addr) >= sizeof(c->gpus[0].address))
		return NULL;
	struct config_gpu *g = &c->gpus[c->ngpus++];
	snprintf(g->address, sizeof(g->address), "%s", addr);
	return g;
}

struct parse_state {
	struct config *c;
	char *why;
	int failed;
	FILE *f;
	int line;       /* lines read so far: ini_parse_stream() counts the same */
	int why_line;   /* the line the handler refused */
};

static bool section_known(const char *section);

/* A [NAME] line's NAME, blanks around it dropped as inih drops them, into
 * out (false when the line is not a section header). */
static bool header_name(const char *line, char *out, size_t cap)
{
	const char *s = line, *e;
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s++ != '[' || !(e = strchr(s, ']')))
		return false;
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	n = (size_t)(e - s) < cap - 1 ? (size_t)(e - s) : cap - 1;
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}

/* fgets() for ini_parse_stream(), counting lines so that a refusal names its
 * own line, not an earlier syntax error's. A section header is checked
 * here: inih reports a section only with its first entry, and an unknown
 * section left empty (a typo in its name, its keys commented out) would
 * otherwise pass unseen. */
static char *read_line(char *str, int num, void *user)
{
	struct parse_state *ps = user;
	char *r = fgets(str, num, ps->f);
	char name[128];

	if (!r)
		return r;
	ps->line++;
	if (!ps->failed && header_name(r, name, sizeof(name)) && !section_known(name)) {
		snprintf(ps->why, WHY_MAX, "unknown section [%s]", name);
		ps->failed = 1;
		ps->why_line = ps->line;
		return NULL;   /* the parse ends here; load_file() reports it */
	}
	return r;
}

/* ini_parse_stream() returns the line of the first error; read_line() gives
 * the line of a refusal here, which load_file() puts before the message. */
static int on_entry(void *user, const char *section, const char *key, const char *value)
{
	struct parse_state *ps = user;
	struct config *c = ps->c;
	const struct config_key *k;
	void *base = c;
	int rc;

	if (ps->failed)
		return 1;   /* keep the first error's message */
	ps->why_line = ps->line;
	if (!section_known(section)) {
		snprintf(ps->why, WHY_MAX, "unknown section [%s]", section);
		ps->failed = 1;
		return 0;
	}
	/* Contracts name the image: one rule for both. */
	if (!strncmp(section, "image.", 6) && image_name_valid(section + 6)) {
		snprintf(ps->why, WHY_MAX, "[%.80s]: an image section's name is 1..%d "
			 "characters of [a-z0-9._-], as contracts name it", section,
			 IMAGE_NAME_MAX);
		ps->failed = 1;
		return 0;
	}
	if (!strncmp(section, "gpu.", 4) && !pci_address_valid(section + 4)) {
		snprintf(ps->why, WHY_MAX, "[%s]: a GPU section names its PCI address as "
			 "dddd:bb:ss.f in lowercase hex", section);
		ps->failed = 1;
		return 0;
	}
	k = key_find(section, key);
	if (!k) {
		rc = TALLY_E_NOTFOUND;
	} else if (!strncmp(section, "image.", 6)) {
		base = image_section(c, section + 6);
		rc = base ? key_set(k, base, value) : TALLY_E_RANGE;
	} else if (!strncmp(section, "gpu.", 4)) {
		base = gpu_section(c, section + 4);
		rc = base ? key_set(k, base, value) : TALLY_E_RANGE;
	} else {
		rc = key_set(k, base, value);
	}
	if (rc == TALLY_E_NOTFOUND)
		snprintf(ps->why, WHY_MAX, "unknown key '%s' in [%s]", key, section);
	else if (rc == TALLY_E_KEY)
		snprintf(ps->why, WHY_MAX, "bad value '%.80s' for '%s' in [%s]: a key is 64 hex "
			 "characters of a valid Ed25519 public key (KEY@HOST:PORT for a peer)", value,
			 key, section);
	else if (rc == TALLY_E_TOOLONG && k && (k->flags & CK_REPEAT))
		snprintf(ps->why, WHY_MAX, "too many '%s' entries in [%s] (at most %d)", key,
			 section, !strcmp(key, "peer") ? CONFIG_PEERS_MAX : CONFIG_ALLOW_MAX);
	else if (rc)
		snprintf(ps->why, WHY_MAX, "bad value '%s' for '%s' in [%s]", value, key,
			 section);
	if (rc)
		ps->failed = 1;
	return rc ? 0 : 1;
}

/* One file's entries into c; why names the file and line. */
static int load_file(struct config *c, const char *path, char *why)
{
	char inner[WHY_MAX] = "";
	struct parse_state ps = { .c = c, .why = inner };
	int rc;

	ps.f = fopen(path, "r");
	if (!ps.f) {
		snprintf(why, WHY_MAX, "%s: cannot open: %s", path, strerror(errno));
		return TALLY_E_IO;
	}
	/* The handler's state is also the reader's stream. */
	rc = ini_parse_stream(read_line, &ps, on_entry, &ps);
	fclose(ps.f);
	if (rc != 0 && !(ps.failed && ps.why_line == rc)) {
		snprintf(why, WHY_MAX, "%s:%d: syntax error: a section is [NAME], an entry "
			 "KEY = VALUE", path, rc);
		return TALLY_E_INVALID;
	}
	if (ps.failed) {
		snprintf(why, WHY_MAX, "%s:%d: %s", path, ps.why_line, inner);
		return TALLY_E_INVALID;
	}
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int conf_file(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	return e->d_name[0] != '.' && n > 5 && !strcmp(e->d_name + n - 5, ".conf");
}

/* PATH.d/ *.conf in name order, after PATH itself: a package's commented
 * tallyd.conf stays as it came, and `tally node init --production` writes
 * the node's own settings beside it. */
static int load_dropins(struct config *c, const char *path, size_t *ndropins, char *why)
{
	char dir[CONFIG_PATH_MAX + 8], file[2 * CONFIG_PATH_MAX];
	struct dirent **names;
	int n, rc = 0;

	snprintf(dir, sizeof(dir), "%.*s.d", CONFIG_PATH_MAX, path);
	n = scandir(dir, &names, conf_file, by_name);
	if (n < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return why_set(why, TALLY_E_IO, "%.200s: cannot read: %s", dir, strerror(errno));
	}
	for (int i = 0; i < n; i++) {
		snprintf(file, sizeof(file), "%s/%s", dir, names[i]->d_name);
		if (!rc) {
			rc = load_file(c, file, why);
			(*ndropins)++;
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int config_load(struct config *c, const char *path, char *why)
{
	int rc;

	config_defaults(c);
	c->ndropins = 0;
	if ((rc = load_file(c, path, why)) || (rc = load_dropins(c, path, &c->ndropins, why)))
		return rc;
	if (!c->state_dir[0])
		snprintf(c->state_dir, sizeof(c->state_dir), "%.1000s/vms", c->data_dir);
	if (c->forward_port_min && !c->forward_address[0]) {
		snprintf(why, WHY_MAX, "%s: forward_ports needs a forward_address", path);
		return TALLY_E_INVALID;
	}
	if (!c->public_host[0])
		snprintf(c->public_host, sizeof(c->public_host), "%s", c->forward_address);
	if (!c->archive_dir[0])
		snprintf(c->archive_dir, sizeof(c->archive_dir), "%.1000s/archive", c->data_dir);
	if (!c->api.tls_cert[0] != !c->api.tls_key[0]) {
		snprintf(why, WHY_MAX, "%s: [api] needs both tls_cert and tls_key, or neither",
			 path);
		return TALLY_E_INVALID;
	}
	if (c->peers.max_msg_burst < c->peers.max_msgs_per_s) {
		snprintf(why, WHY_MAX, "%s: [peers] max_msg_burst is below max_msgs_per_s", path);
		return TALLY_E_INVALID;
	}
	if (c->api.max_connections_per_ip > c->api.max_connections) {
		snprintf(why, WHY_MAX, "%s: [api] max_connections_per_ip is above max_connections",
			 path);
		return TALLY_E_INVALID;
	}
	for (size_t i = 0; i < c->nimages; i++) {
		const struct config_image *im = &c->images[i];
		if (!im->path[0] && !im->kernel[0]) {
			snprintf(why, WHY_MAX, "%s: image '%s' needs a path, a kernel or both",
				 path, im->name);
			return TALLY_E_INVALID;
		}
	}
	return 0;
}
