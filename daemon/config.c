#include "daemon/config.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/codec.h"
#include "lib/crypto.h"
#include "lib/errors.h"

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->data_dir, sizeof(c->data_dir), "/var/lib/tally");
	snprintf(c->key, sizeof(c->key), "/etc/tally/node.pem");
	snprintf(c->genesis, sizeof(c->genesis), "/etc/tally/genesis.json");
	snprintf(c->listen, sizeof(c->listen), "127.0.0.1:7654");
	snprintf(c->log_level, sizeof(c->log_level), "info");
	snprintf(c->log, sizeof(c->log), "stderr");
	c->block_interval_ms = 1000;
	c->min_free_mib = 64;
	c->api.max_connections = 256;
	c->api.max_connections_per_ip = 32;
	c->api.timeout_s = 15;
	c->api.requests_per_s = 100;
	c->api.request_burst = 200;
	c->peers.max_peers = 64;
	c->peers.max_msgs_per_s = 1000;
	c->peers.max_msg_burst = 4000;
	c->interval_s = 60;
	c->announce = 1;
	snprintf(c->pin_dir, sizeof(c->pin_dir), "/sys/fs/bpf/tally");
	snprintf(c->uri, sizeof(c->uri), "qemu:///system");
	snprintf(c->domain_type, sizeof(c->domain_type), "kvm");
	snprintf(c->network, sizeof(c->network), "nat");
	snprintf(c->name_prefix, sizeof(c->name_prefix), "tally-");
	c->overcommit_cpu_milli = 1000;
	c->overcommit_mem_milli = 1000;
	c->guest_outbound = 1;
}

struct parse_state {
	struct config *c;
	char *why;
	int failed;
};

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

static int node_key(struct config *c, const char *k, const char *v)
{
	if (!strcmp(k, "data_dir"))
		return set_str(c->data_dir, sizeof(c->data_dir), v);
	if (!strcmp(k, "key"))
		return set_str(c->key, sizeof(c->key), v);
	if (!strcmp(k, "genesis"))
		return set_str(c->genesis, sizeof(c->genesis), v);
	if (!strcmp(k, "listen"))
		return set_str(c->listen, sizeof(c->listen), v);
	if (!strcmp(k, "log_level"))
		return set_str(c->log_level, sizeof(c->log_level), v);
	if (!strcmp(k, "log"))
		return set_str(c->log, sizeof(c->log), v);
	if (!strcmp(k, "block_interval_ms"))
		return set_u32(&c->block_interval_ms, v, 50, 600000);
	if (!strcmp(k, "min_free_mib"))
		return set_u32(&c->min_free_mib, v, 0, 1048576);
	return TALLY_E_NOTFOUND;
}

static int api_key(struct config_api *a, const char *k, const char *v)
{
	if (!strcmp(k, "tls_cert"))
		return set_str(a->tls_cert, sizeof(a->tls_cert), v);
	if (!strcmp(k, "tls_key"))
		return set_str(a->tls_key, sizeof(a->tls_key), v);
	if (!strcmp(k, "max_connections"))
		return set_u32(&a->max_connections, v, 1, 65536);
	if (!strcmp(k, "max_connections_per_ip"))
		return set_u32(&a->max_connections_per_ip, v, 1, 65536);
	if (!strcmp(k, "timeout_s"))
		return set_u32(&a->timeout_s, v, 1, 3600);
	if (!strcmp(k, "requests_per_s"))
		return set_u32(&a->requests_per_s, v, 0, 1000000);
	if (!strcmp(k, "request_burst"))
		return set_u32(&a->request_burst, v, 1, 1000000);
	return TALLY_E_NOTFOUND;
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

static int peers_key(struct config_peers *p, const char *k, const char *v)
{
	if (!strcmp(k, "listen")) {
		if (*v && !addr_valid(v))
			return TALLY_E_RANGE;
		return set_str(p->listen, sizeof(p->listen), v);
	}
	if (!strcmp(k, "peer")) {
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
	if (!strcmp(k, "allow")) {
		if (p->nallow == CONFIG_ALLOW_MAX)
			return TALLY_E_TOOLONG;
		if (set_key(p->allow[p->nallow], v))
			return TALLY_E_KEY;
		p->nallow++;
		return 0;
	}
	if (!strcmp(k, "max_peers"))
		return set_u32(&p->max_peers, v, 1, 1024);
	if (!strcmp(k, "max_msgs_per_s"))
		return set_u32(&p->max_msgs_per_s, v, 10, 1000000);
	if (!strcmp(k, "max_msg_burst"))
		return set_u32(&p->max_msg_burst, v, 10, 1000000);
	return TALLY_E_NOTFOUND;
}

static int metering_key(struct config *c, const char *k, const char *v)
{
	if (!strcmp(k, "interval_s"))
		return set_u32(&c->interval_s, v, 1, 3600);
	if (!strcmp(k, "pin_dir"))
		return set_str(c->pin_dir, sizeof(c->pin_dir), v);
	return TALLY_E_NOTFOUND;
}

static int libvirt_key(struct config *c, const char *k, const char *v)
{
	if (!strcmp(k, "uri"))
		return set_str(c->uri, sizeof(c->uri), v);
	if (!strcmp(k, "domain_type")) {
		if (strcmp(v, "kvm") && strcmp(v, "qemu"))
			return TALLY_E_RANGE;
		return set_str(c->domain_type, sizeof(c->domain_type), v);
	}
	if (!strcmp(k, "network")) {
		if (strcmp(v, "nat") && strcmp(v, "user") && strcmp(v, "none"))
			return TALLY_E_RANGE;
		return set_str(c->network, sizeof(c->network), v);
	}
	if (!strcmp(k, "name_prefix"))
		return set_str(c->name_prefix, sizeof(c->name_prefix), v);
	if (!strcmp(k, "state_dir"))
		return set_str(c->state_dir, sizeof(c->state_dir), v);
	if (!strcmp(k, "archive_dir"))
		return set_str(c->archive_dir, sizeof(c->archive_dir), v);
	if (!strcmp(k, "forward_address"))
		return set_str(c->forward_address, sizeof(c->forward_address), v);
	if (!strcmp(k, "forward_ports"))
		return set_port_range(&c->forward_port_min, &c->forward_port_max, v);
	if (!strcmp(k, "public_host"))
		return set_str(c->public_host, sizeof(c->public_host), v);
	if (!strcmp(k, "guest_outbound"))
		return set_bool(&c->guest_outbound, v);
	if (!strcmp(k, "overcommit_cpu"))
		return set_milli(&c->overcommit_cpu_milli, v);
	if (!strcmp(k, "overcommit_mem"))
		return set_milli(&c->overcommit_mem_milli, v);
	return TALLY_E_NOTFOUND;
}

static int prices_key(struct config *c, const char *k, const char *v)
{
	if (!strcmp(k, "vcpu_second"))
		return set_u64(&c->prices.vcpu_second, v);
	if (!strcmp(k, "mem_gib_second"))
		return set_u64(&c->prices.mem_gib_second, v);
	if (!strcmp(k, "gpu_second"))
		return set_u64(&c->prices.gpu_second, v);
	return TALLY_E_NOTFOUND;
}

static int provider_key(struct config *c, const char *k, const char *v)
{
	if (!strcmp(k, "announce"))
		return set_bool(&c->announce, v);
	if (!strcmp(k, "endpoint"))
		return set_str(c->endpoint, sizeof(c->endpoint), v);
	if (!strcmp(k, "region"))
		return set_str(c->region, sizeof(c->region), v);
	if (!strcmp(k, "vcpus"))
		return set_u32(&c->capacity_vcpus, v, 1, UINT32_MAX);
	if (!strcmp(k, "memory_mib"))
		return set_u32(&c->capacity_memory_mib, v, 1, UINT32_MAX);
	return TALLY_E_NOTFOUND;
}

static int image_key(struct config_image *im, const char *k, const char *v)
{
	if (!strcmp(k, "path"))
		return set_str(im->path, sizeof(im->path), v);
	if (!strcmp(k, "format")) {
		if (strcmp(v, "qcow2") && strcmp(v, "raw"))
			return TALLY_E_RANGE;
		return set_str(im->format, sizeof(im->format), v);
	}
	if (!strcmp(k, "kernel"))
		return set_str(im->kernel, sizeof(im->kernel), v);
	if (!strcmp(k, "initrd"))
		return set_str(im->initrd, sizeof(im->initrd), v);
	if (!strcmp(k, "cmdline"))
		return set_str(im->cmdline, sizeof(im->cmdline), v);
	if (!strcmp(k, "min_memory_mib"))
		return set_u32(&im->min_memory_mib, v, 1, UINT32_MAX);
	if (!strcmp(k, "gpu_classes"))
		return set_str(im->gpu_classes, sizeof(im->gpu_classes), v);
	if (!strcmp(k, "cloud_init"))
		return set_bool(&im->cloud_init, v);
	if (!strcmp(k, "ssh_user"))
		return set_str(im->ssh_user, sizeof(im->ssh_user), v);
	return TALLY_E_NOTFOUND;
}

static int gpu_key(struct config_gpu *g, const char *k, const char *v)
{
	if (!strcmp(k, "class"))   /* the provisioner's class names are at most 31 bytes */
		return strlen(v) < 32 ? set_str(g->class_name, sizeof(g->class_name), v)
				      : TALLY_E_TOOLONG;
	return TALLY_E_NOTFOUND;
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
	snprintf(im->format, sizeof(im->format), "qcow2");
	im->min_memory_mib = 64;
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

/* ini_parse() returns the line of the first entry this handler refuses, so
 * the messages here leave the line number to config_load(). */
static int on_entry(void *user, const char *section, const char *key, const char *value)
{
	struct parse_state *ps = user;
	struct config *c = ps->c;
	int rc;

	if (ps->failed)
		return 1;   /* keep the first error's message */

	if (!strcmp(section, "node")) {
		rc = node_key(c, key, value);
	} else if (!strcmp(section, "api")) {
		rc = api_key(&c->api, key, value);
	} else if (!strcmp(section, "peers")) {
		rc = peers_key(&c->peers, key, value);
	} else if (!strcmp(section, "metering")) {
		rc = metering_key(c, key, value);
	} else if (!strcmp(section, "libvirt")) {
		rc = libvirt_key(c, key, value);
	} else if (!strcmp(section, "prices")) {
		rc = prices_key(c, key, value);
	} else if (!strcmp(section, "provider")) {
		rc = provider_key(c, key, value);
	} else if (!strncmp(section, "image.", 6)) {
		/* Contracts name the image: one rule for both. */
		if (image_name_valid(section + 6)) {
			snprintf(ps->why, WHY_MAX, "[%.80s]: an image section's name is 1..%d "
				 "characters of [a-z0-9._-], as contracts name it", section,
				 IMAGE_NAME_MAX);
			ps->failed = 1;
			return 0;
		}
		struct config_image *im = image_section(c, section + 6);
		rc = im ? image_key(im, key, value) : TALLY_E_RANGE;
	} else if (!strncmp(section, "gpu.", 4)) {
		if (!pci_address_valid(section + 4)) {
			snprintf(ps->why, WHY_MAX, "[%s]: a GPU section names its PCI address as "
				 "dddd:bb:ss.f in lowercase hex", section);
			ps->failed = 1;
			return 0;
		}
		struct config_gpu *g = gpu_section(c, section + 4);
		rc = g ? gpu_key(g, key, value) : TALLY_E_RANGE;
	} else {
		snprintf(ps->why, WHY_MAX, "unknown section [%s]", section);
		ps->failed = 1;
		return 0;
	}
	if (rc == TALLY_E_NOTFOUND)
		snprintf(ps->why, WHY_MAX, "unknown key '%s' in [%s]", key, section);
	else if (rc == TALLY_E_KEY)
		snprintf(ps->why, WHY_MAX, "bad value '%.80s' for '%s' in [%s]: a key is 64 hex "
			 "characters of a valid Ed25519 public key (KEY@HOST:PORT for a peer)", value,
			 key, section);
	else if (rc == TALLY_E_TOOLONG)
		snprintf(ps->why, WHY_MAX, "too many '%s' entries in [%s] (at most %d)", key,
			 section, !strcmp(key, "peer") ? CONFIG_PEERS_MAX : CONFIG_ALLOW_MAX);
	else if (rc)
		snprintf(ps->why, WHY_MAX, "bad value '%s' for '%s' in [%s]", value, key,
			 section);
	if (rc)
		ps->failed = 1;
	return rc ? 0 : 1;
}

int config_load(struct config *c, const char *path, char *why)
{
	char inner[WHY_MAX] = "";
	struct parse_state ps = { .c = c, .why = inner };

	config_defaults(c);
	int rc = ini_parse(path, on_entry, &ps);
	if (rc == -1) {
		snprintf(why, WHY_MAX, "%s: cannot open: %s", path, strerror(errno));
		return TALLY_E_IO;
	}
	if (ps.failed || rc != 0) {
		snprintf(why, WHY_MAX, "%s:%d: %s", path, rc, ps.failed ? inner : "syntax error");
		return TALLY_E_INVALID;
	}
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
