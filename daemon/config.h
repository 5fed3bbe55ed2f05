/* tallyd's configuration: an INI file (default /etc/tally/tallyd.conf) and
 * the drop-ins beside it (FILE.d/ *.conf, in name order). config_keys[]
 * lists every key; tallyd.conf(5) and docs/OPERATING.md are made from it. */
#ifndef TALLY_CONFIG_H
#define TALLY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contracts/contract.h"

#define CONFIG_PATH_MAX 1024
#define CONFIG_IMAGES_MAX 32
#define CONFIG_GPUS_MAX 16
#define CONFIG_PEERS_MAX 64
#define CONFIG_ALLOW_MAX 128
#define CONFIG_ADDR_MAX 128

struct config_image {
	char name[IMAGE_NAME_MAX + 1];
	char path[CONFIG_PATH_MAX];      /* disk image, or empty for kernel boot */
	char format[16];                 /* qcow2 | raw */
	char kernel[CONFIG_PATH_MAX];
	char initrd[CONFIG_PATH_MAX];
	char cmdline[512];
	uint32_t min_memory_mib;
	char gpu_classes[128];           /* comma-separated GPU classes it supports */
	int cloud_init;                  /* wants a NoCloud seed */
	char ssh_user[32];               /* login user of an image that runs sshd */
};

struct config_gpu {
	char address[32];                /* PCI address, 0000:65:00.0 */
	char class_name[64];             /* e.g. nvidia-a100 */
};

/* [api]: how the HTTP server guards itself (docs/OPERATING.md, "The API"). */
struct config_api {
	char tls_cert[CONFIG_PATH_MAX];  /* PEM certificate chain; empty: plain HTTP */
	char tls_key[CONFIG_PATH_MAX];   /* PEM private key of the certificate */
	uint32_t max_connections;        /* open connections in all */
	uint32_t max_connections_per_ip; /* open connections from one address */
	uint32_t timeout_s;              /* a connection idle this long is closed */
	uint32_t requests_per_s;         /* per address, sustained; 0 = no limit */
	uint32_t request_burst;          /* per address, at once */
};

/* One `peer =` line of [peers]: an address to dial, and the key the peer
 * must prove there ("KEY@HOST:PORT"), or any validator's or allowed key
 * ("HOST:PORT"). */
struct config_peer {
	char addr[CONFIG_ADDR_MAX];      /* host:port, [v6]:port */
	int has_key;
	uint8_t key[32];
};

/* [peers]: the peer transport (daemon/net/, docs/OPERATING.md "Networks"). */
struct config_peers {
	char listen[CONFIG_ADDR_MAX];    /* host:port for peers; empty: dial only */
	size_t npeers;
	struct config_peer peers[CONFIG_PEERS_MAX];
	size_t nallow;                   /* keys that may connect without being dialed */
	uint8_t allow[CONFIG_ALLOW_MAX][32];
	uint32_t max_peers;              /* connected peers at once */
	uint32_t max_msgs_per_s;         /* per peer, sustained; more is a flood */
	uint32_t max_msg_burst;          /* per peer, at once */
};

struct config {
	/* [node] */
	char data_dir[CONFIG_PATH_MAX];
	char key[CONFIG_PATH_MAX];
	char genesis[CONFIG_PATH_MAX];
	char listen[128];                /* host:port */
	char log_level[16];
	char log[16];                    /* stderr | syslog */
	uint32_t block_interval_ms;      /* how often the node proposes a block */
	uint32_t min_free_mib;           /* below this free on data_dir: no new transactions */
	/* [api] */
	struct config_api api;
	/* [peers] */
	struct config_peers peers;
	/* [metering] */
	uint32_t interval_s;
	char pin_dir[CONFIG_PATH_MAX];
	/* [libvirt] */
	char uri[256];
	char domain_type[16];            /* kvm | qemu */
	char network[16];                /* nat | user | none */
	char name_prefix[40];            /* domain names: <prefix><lease id prefix> */
	char state_dir[CONFIG_PATH_MAX];
	char archive_dir[CONFIG_PATH_MAX];
	char forward_address[64];        /* user network: forwarded ports listen here */
	uint32_t forward_port_min, forward_port_max;   /* forward_ports = MIN-MAX */
	char public_host[256];           /* what tenants connect to (default forward_address) */
	int guest_outbound;              /* user network: guests may connect out */
	uint32_t overcommit_cpu_milli;   /* 2.0 -> 2000 */
	uint32_t overcommit_mem_milli;
	/* [prices] */
	struct lease_prices prices;
	/* [provider]: the node's PROVIDER announcement (daemon/announce.h) */
	int announce;                    /* 1 yes, 0 no, -1 auto (the default): yes
					  * when the node runs VMs (not --no-vms) */
	char endpoint[257];              /* "": http(s)://listen */
	char region[65];
	uint32_t capacity_vcpus;         /* 0: host CPUs x overcommit_cpu */
	uint32_t capacity_memory_mib;    /* 0: host memory x overcommit_mem */
	/* The SLA terms the node announces (announce_offer: the chain holds
	 * every LEASE_OPEN to them) and starts a lease with
	 * (keeper_check_admission). */
	uint32_t sla_max_credit_ppm;     /* at most this credit_ppm */
	uint32_t sla_min_delay_ppm;      /* at least this max_delay_ppm */
	/* [image.NAME] */
	size_t nimages;
	struct config_image images[CONFIG_IMAGES_MAX];
	/* [gpu.ADDRESS] */
	size_t ngpus;
	struct config_gpu gpus[CONFIG_GPUS_MAX];
	/* drop-in files read after the main one */
	size_t ndropins;
};

/* What a key's value is, as the parser checks it. */
enum config_type {
	CT_STR,          /* text that fits the field */
	CT_CHOICE,       /* one of the words in choices, "kvm|qemu" */
	CT_U32,          /* decimal, min..max */
	CT_U64,          /* decimal */
	CT_BOOL,         /* yes|no, true|false, 1|0 */
	CT_MILLI,        /* a decimal with up to three places: 2.5 -> 2500 */
	CT_FN,           /* checked and stored by set() */
};

enum { CK_REPEAT = 1 };   /* the key may appear more than once */

/* One key of tallyd.conf. Sections "image.NAME" and "gpu.ADDRESS" stand for
 * every such section; their keys' offsets are into struct config_image and
 * struct config_gpu, all others' into struct config. */
struct config_key {
	const char *section;
	const char *key;
	enum config_type type;
	size_t offset, size;     /* where the value goes */
	uint64_t min, max;       /* CT_U32 */
	const char *choices;     /* CT_CHOICE */
	int (*set)(void *base, const char *value);   /* CT_FN */
	const char *def;         /* the default, as the file would spell it; NULL: none */
	const char *def_doc;     /* a default derived from other keys, as docs name it */
	const char *example;     /* for a key without a default: a valid value */
	const char *value;       /* the value's shape in docs (PATH, N, ADDR); NULL for
				  * choices and yes|no */
	const char *doc;         /* what it means */
	unsigned flags;
};

struct config_section {
	const char *name;
	const char *doc;
};

/* Up to a NULL section. */
extern const struct config_key config_keys[];
extern const struct config_section config_sections[];

/* Fills defaults, then reads path. why[WHY_MAX] names the file, line and key
 * of the first error. */
int config_load(struct config *c, const char *path, char *why);
void config_defaults(struct config *c);

#endif
