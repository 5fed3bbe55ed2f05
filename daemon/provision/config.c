/* The node's provisioning configuration: copied at prov_open and checked
 * (catalogue entries, GPU inventory, directories, ratios) before anything
 * else happens, so that a bad entry is an error at start, not at a lease. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "daemon/provision/domxml.h"
#include "daemon/provision/provision_impl.h"
#include "lib/errors.h"

static bool name_chars_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (; *s; s++)
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) ||
		      *s == '.' || *s == '_' || *s == '-'))
			return false;
	return true;
}

/* A login name cloud-init can make and a YAML scalar needs no quoting for. */
static bool user_name_ok(const char *s)
{
	size_t n = strnlen(s, PROV_USER_MAX);

	if (n == 0 || n >= PROV_USER_MAX || !(islower((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (; *s; s++)
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_' ||
		      *s == '-'))
			return false;
	return true;
}

static int check_image(const struct prov *p, size_t idx, char *why)
{
	const struct prov_image *img = &p->images[idx];

	if (!name_chars_ok(img->name, IMAGE_NAME_MAX))
		return why_set(why, TALLY_E_INVALID,
				 "catalogue image name '%s' is not 1..%d of [a-z0-9._-]",
				 img->name, IMAGE_NAME_MAX);
	for (size_t j = 0; j < idx; j++)
		if (strcmp(p->images[j].name, img->name) == 0)
			return why_set(why, TALLY_E_INVALID,
					 "catalogue lists image '%s' twice", img->name);
	if (img->ssh_user[0] && !user_name_ok(img->ssh_user))
		return why_set(why, TALLY_E_INVALID,
				 "image '%s': login user '%s' is not 1..31 of [a-z0-9_-] "
				 "starting with a letter or '_'", img->name, img->ssh_user);
	if (!img->disk_path[0] && !img->kernel[0])
		return why_set(why, TALLY_E_INVALID,
				 "image '%s' has neither a disk nor a kernel", img->name);
	if (img->disk_path[0] && strcmp(img->disk_format, "qcow2") &&
	    strcmp(img->disk_format, "raw"))
		return why_set(why, TALLY_E_INVALID,
				 "image '%s': disk format '%s' is not qcow2 or raw",
				 img->name, img->disk_format);
	if (img->n_gpu_classes > PROV_IMAGE_CLASSES_MAX)
		return why_set(why, TALLY_E_INVALID, "image '%s' lists too many GPU classes",
				 img->name);
	for (size_t c = 0; c < img->n_gpu_classes; c++)
		if (!name_chars_ok(img->gpu_classes[c], PROV_CLASS_MAX - 1))
			return why_set(why, TALLY_E_INVALID,
					 "image '%s': GPU class '%s' is not [a-z0-9._-]",
					 img->name, img->gpu_classes[c]);
	{
		const char *files[] = { img->disk_path, img->kernel, img->initrd };

		for (size_t f = 0; f < 3; f++)
			if (files[f][0] && access(files[f], R_OK))
				return why_set(why, TALLY_E_NOTFOUND, "image '%s': cannot read %s: %s",
						 img->name, files[f], strerror(errno));
	}
	return 0;
}

static int check_gpu(const struct prov *p, size_t idx, char *why)
{
	const struct prov_gpu *g = &p->gpus[idx];
	struct pci_addr a;

	if (pci_addr_parse(g->pci_addr, &a))
		return why_set(why, TALLY_E_INVALID,
				 "GPU inventory: '%s' is not a PCI address like 0000:65:00.0",
				 g->pci_addr);
	if (!name_chars_ok(g->class_name, PROV_CLASS_MAX - 1))
		return why_set(why, TALLY_E_INVALID, "GPU %s: class '%s' is not [a-z0-9._-]",
				 g->pci_addr, g->class_name);
	for (size_t j = 0; j < idx; j++)
		if (strcasecmp(p->gpus[j].pci_addr, g->pci_addr) == 0)
			return why_set(why, TALLY_E_INVALID, "GPU inventory lists %s twice",
					 g->pci_addr);
	return 0;
}

int prov_config_copy(struct prov *p, const struct prov_config *cfg, char *why)
{
	p->cfg = *cfg;
	p->uri = strdup(cfg->uri ? cfg->uri : PROV_DEFAULT_URI);
	p->prefix = strdup(cfg->name_prefix ? cfg->name_prefix : PROV_DEFAULT_PREFIX);
	p->state_dir = cfg->state_dir ? strdup(cfg->state_dir) : NULL;
	p->archive_dir = cfg->log_archive_dir ? strdup(cfg->log_archive_dir) : NULL;
	p->forward_address = strdup(cfg->forward_address ? cfg->forward_address : "");
	p->owner = strdup(cfg->owner ? cfg->owner : "");
	p->images = calloc(cfg->n_images + 1, sizeof(*p->images));
	p->gpus = calloc(cfg->n_gpus + 1, sizeof(*p->gpus));
	if (!p->uri || !p->prefix || (cfg->state_dir && !p->state_dir) ||
	    (cfg->log_archive_dir && !p->archive_dir) || !p->forward_address || !p->owner || !p->images ||
	    !p->gpus)
		return why_set(why, TALLY_E_NOMEM, "out of memory");
	if (cfg->n_images)
		memcpy(p->images, cfg->images, cfg->n_images * sizeof(*p->images));
	if (cfg->n_gpus)
		memcpy(p->gpus, cfg->gpus, cfg->n_gpus * sizeof(*p->gpus));
	p->cfg.uri = p->uri;
	p->cfg.name_prefix = p->prefix;
	p->cfg.state_dir = p->state_dir;
	p->cfg.log_archive_dir = p->archive_dir;
	p->cfg.forward_address = p->forward_address;
	p->cfg.owner = p->owner[0] ? p->owner : NULL;
	if (p->owner[0] && !domxml_owner_valid(p->owner))
		return why_set(why, TALLY_E_INVALID, "the owner recorded in domains must be 64"
			       " lowercase hex (a node key)");
	p->cfg.images = p->images;
	p->cfg.gpus = p->gpus;
	if (p->cfg.cpu_overcommit == 0)
		p->cfg.cpu_overcommit = 1.0;
	if (p->cfg.mem_overcommit == 0)
		p->cfg.mem_overcommit = 1.0;
	return 0;
}

int prov_config_check(const struct prov *p, char *why)
{
	const struct prov_config *c = &p->cfg;
	int err;

	if (!p->state_dir || p->state_dir[0] != '/')
		return why_set(why, TALLY_E_INVALID, "the state dir must be an absolute path");
	if (p->archive_dir && p->archive_dir[0] != '/')
		return why_set(why, TALLY_E_INVALID, "the log archive dir must be an absolute path");
	if (!name_chars_ok(p->prefix, PROV_PREFIX_MAX))
		return why_set(why, TALLY_E_INVALID,
				 "domain name prefix '%s' is not 1..%d of [a-z0-9._-]",
				 p->prefix, PROV_PREFIX_MAX);
	if (c->domain_type != PROV_DOMAIN_KVM && c->domain_type != PROV_DOMAIN_QEMU)
		return why_set(why, TALLY_E_INVALID, "domain type must be kvm or qemu");
	if (c->net != PROV_NET_NAT && c->net != PROV_NET_USER && c->net != PROV_NET_NONE)
		return why_set(why, TALLY_E_INVALID, "network mode must be nat, user or none");
	if (c->forward_port_min || c->forward_port_max) {
		struct in_addr a;

		if (c->net != PROV_NET_USER)
			return why_set(why, TALLY_E_INVALID,
					 "forwarded ports need the user network mode");
		if (!c->forward_port_min || c->forward_port_min > c->forward_port_max)
			return why_set(why, TALLY_E_INVALID, "forward port range %u-%u is empty",
					 c->forward_port_min, c->forward_port_max);
		if (inet_pton(AF_INET, c->forward_address, &a) != 1)
			return why_set(why, TALLY_E_INVALID,
					 "forward address '%s' is not an IPv4 address",
					 c->forward_address);
	}
	if (!(c->cpu_overcommit > 0 && c->cpu_overcommit <= 64) ||
	    !(c->mem_overcommit > 0 && c->mem_overcommit <= 64))
		return why_set(why, TALLY_E_INVALID, "overcommit ratios must be in (0, 64]");
	for (size_t i = 0; i < c->n_images; i++)
		if ((err = check_image(p, i, why)))
			return err;
	for (size_t i = 0; i < c->n_gpus; i++)
		if ((err = check_gpu(p, i, why)))
			return err;
	return 0;
}
