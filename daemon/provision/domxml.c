/* Domain XML for a lease: see domxml.h. */
#include "daemon/provision/domxml.h"

#include <ctype.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/codec.h"
#include "lib/errors.h"

#define X(s) ((const xmlChar *)(s))

static int hex_field(const char *s, size_t n, unsigned *out)
{
	unsigned v = 0;

	for (size_t i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return TALLY_E_INVALID;
		v = v * 16 + (isdigit((unsigned char)s[i]) ? s[i] - '0' :
			      (tolower((unsigned char)s[i]) - 'a' + 10));
	}
	*out = v;
	return 0;
}

int pci_addr_parse(const char *s, struct pci_addr *a)
{
	if (strlen(s) != PROV_PCI_ADDR_LEN || s[4] != ':' || s[7] != ':' || s[10] != '.')
		return TALLY_E_INVALID;
	if (hex_field(s, 4, &a->domain) || hex_field(s + 5, 2, &a->bus) ||
	    hex_field(s + 8, 2, &a->slot) || hex_field(s + 11, 1, &a->function))
		return TALLY_E_INVALID;
	if (a->slot > 0x1f || a->function > 7)
		return TALLY_E_INVALID;
	return 0;
}

void pci_addr_nodedev_name(const struct pci_addr *a, char out[32])
{
	snprintf(out, 32, "pci_%04x_%02x_%02x_%x", a->domain, a->bus, a->slot, a->function);
}

/* ---- the metadata: one table, written and read ---------------------------- */

enum meta_attr {
	META_ID, META_IMAGE, META_DISK_GIB, META_GPUS, META_SSH_PORT, META_HOSTNAME, META_OWNER,
	META_N
};

static const struct {
	const char *name;
	bool optional;          /* absent on domains made before it existed */
} meta_attrs[META_N] = {
	[META_ID] = { "id", false },
	[META_IMAGE] = { "image", false },
	[META_DISK_GIB] = { "disk-gib", false },
	[META_GPUS] = { "gpus", false },
	[META_SSH_PORT] = { "ssh-port", true },
	[META_HOSTNAME] = { "hostname", true },
	[META_OWNER] = { "owner", true },
};

#define META_VALUE_MAX (PROV_GPUS_MAX * (PROV_PCI_ADDR_LEN + 1) + 1)

static void meta_format(const struct domxml_lease_meta *m, enum meta_attr a,
			char out[META_VALUE_MAX])
{
	size_t len = 0;

	switch (a) {
	case META_ID:
		hex_encode(m->lease_id, LEASE_ID_LEN, out);
		break;
	case META_IMAGE:
		snprintf(out, META_VALUE_MAX, "%s", m->image);
		break;
	case META_DISK_GIB:
		snprintf(out, META_VALUE_MAX, "%u", m->disk_gib);
		break;
	case META_GPUS:
		out[0] = '\0';
		for (size_t i = 0; i < m->n_gpus; i++)
			len += (size_t)snprintf(out + len, META_VALUE_MAX - len, "%s%s",
						i ? " " : "", m->gpus[i]);
		break;
	case META_SSH_PORT:
		snprintf(out, META_VALUE_MAX, "%u", m->ssh_port);
		break;
	case META_HOSTNAME:
		snprintf(out, META_VALUE_MAX, "%s", m->hostname);
		break;
	case META_OWNER:
		snprintf(out, META_VALUE_MAX, "%s", m->owner);
		break;
	case META_N:
		break;
	}
}

/* A decimal without sign, leading zeros or spaces, at most max. */
static int parse_decimal(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	if (!isdigit((unsigned char)s[0]) || (s[0] == '0' && s[1]) || strlen(s) > 10)
		return TALLY_E_ENCODING;
	*out = strtoul(s, &end, 10);
	return *end || *out > max ? TALLY_E_ENCODING : 0;
}

static int parse_gpus(const char *list, struct domxml_lease_meta *m)
{
	const char *s = list;

	m->n_gpus = 0;
	while (*s) {
		size_t n = strcspn(s, " ");
		struct pci_addr a;

		if (n != PROV_PCI_ADDR_LEN || m->n_gpus == PROV_GPUS_MAX)
			return TALLY_E_ENCODING;
		memcpy(m->gpus[m->n_gpus], s, n);
		m->gpus[m->n_gpus][n] = '\0';
		if (pci_addr_parse(m->gpus[m->n_gpus], &a))
			return TALLY_E_ENCODING;
		m->n_gpus++;
		s += n;
		if (*s == ' ' && *++s == '\0')
			return TALLY_E_ENCODING;
	}
	return 0;
}

bool domxml_owner_valid(const char *s)
{
	if (strlen(s) != PROV_OWNER_LEN)
		return false;
	for (const char *c = s; *c; c++)
		if (!isdigit((unsigned char)*c) && (*c < 'a' || *c > 'f'))
			return false;
	return true;
}

/* The inverse of meta_format. */
static int meta_parse(struct domxml_lease_meta *m, enum meta_attr a, const char *v)
{
	unsigned long n;

	switch (a) {
	case META_ID:
		return strlen(v) == 2 * LEASE_ID_LEN && !hex_decode(v, m->lease_id, LEASE_ID_LEN) ?
		       0 : TALLY_E_ENCODING;
	case META_IMAGE:
		if (image_name_valid(v))
			return TALLY_E_ENCODING;
		snprintf(m->image, sizeof(m->image), "%s", v);
		return 0;
	case META_DISK_GIB:
		if (parse_decimal(v, UINT32_MAX, &n))
			return TALLY_E_ENCODING;
		m->disk_gib = (uint32_t)n;
		return 0;
	case META_GPUS:
		return parse_gpus(v, m);
	case META_SSH_PORT:
		if (parse_decimal(v, UINT16_MAX, &n))
			return TALLY_E_ENCODING;
		m->ssh_port = (uint16_t)n;
		return 0;
	case META_HOSTNAME:
		if (hostname_check(v, NULL))
			return TALLY_E_ENCODING;
		snprintf(m->hostname, sizeof(m->hostname), "%s", v);
		return 0;
	case META_OWNER:
		if (!domxml_owner_valid(v))
			return TALLY_E_ENCODING;
		snprintf(m->owner, sizeof(m->owner), "%s", v);
		return 0;
	case META_N:
		break;
	}
	return TALLY_E_ENCODING;
}

int domxml_parse_meta(const char *xml, struct domxml_lease_meta *m)
{
	xmlDocPtr doc;
	xmlNodePtr root;
	int err = 0;

	memset(m, 0, sizeof(*m));
	doc = xmlReadMemory(xml, (int)strlen(xml), NULL, NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc)
		return TALLY_E_ENCODING;
	root = xmlDocGetRootElement(doc);
	/* virDomainGetMetadata hands the element back without its namespace. */
	if (!root || xmlStrcmp(root->name, X("lease")) ||
	    (root->ns && xmlStrcmp(root->ns->href, X(PROV_XMLNS))) || root->children)
		err = TALLY_E_ENCODING;
	for (xmlAttrPtr at = root ? root->properties : NULL; !err && at; at = at->next) {
		enum meta_attr a;

		for (a = 0; a < META_N; a++)
			if (!xmlStrcmp(at->name, X(meta_attrs[a].name)))
				break;
		if (a == META_N || at->ns)
			err = TALLY_E_ENCODING;
	}
	for (enum meta_attr a = 0; !err && a < META_N; a++) {
		xmlChar *v = xmlHasProp(root, X(meta_attrs[a].name)) ?
			     xmlGetProp(root, X(meta_attrs[a].name)) : NULL;

		if (v)
			err = meta_parse(m, a, (const char *)v);
		else if (!meta_attrs[a].optional)
			err = TALLY_E_ENCODING;
		xmlFree(v);
	}
	xmlFreeDoc(doc);
	if (err)
		memset(m, 0, sizeof(*m));
	return err;
}

/* ---- the domain ------------------------------------------------------------ */

/* Elements and attributes; libxml2 escapes every text and value. */
static xmlNodePtr el(xmlNodePtr parent, const char *name, const char *text)
{
	return xmlNewTextChild(parent, NULL, X(name), text ? X(text) : NULL);
}

static xmlNodePtr el_attrs(xmlNodePtr parent, const char *name, const char *const *kv)
{
	xmlNodePtr n = el(parent, name, NULL);

	for (size_t i = 0; n && kv[i]; i += 2)
		xmlNewProp(n, X(kv[i]), X(kv[i + 1]));
	return n;
}

static xmlNodePtr el_u32(xmlNodePtr parent, const char *name, uint32_t v)
{
	char buf[16];

	snprintf(buf, sizeof(buf), "%u", v);
	return el(parent, name, buf);
}

static void put_metadata(xmlNodePtr dom, const struct domxml_lease_meta *m)
{
	xmlNodePtr md = el(dom, "metadata", NULL);
	xmlNodePtr lease = el(md, "lease", NULL);
	xmlNsPtr ns = xmlNewNs(lease, X(PROV_XMLNS), X(PROV_XMLNS_PREFIX));
	char v[META_VALUE_MAX];

	xmlSetNs(lease, ns);
	for (enum meta_attr a = 0; a < META_N; a++) {
		if (a == META_OWNER && !m->owner[0])
			continue;
		meta_format(m, a, v);
		xmlNewProp(lease, X(meta_attrs[a].name), X(v));
	}
}

static void put_os(xmlNodePtr dom, const struct prov_image *img)
{
	xmlNodePtr os = el(dom, "os", NULL);

	el_attrs(os, "type", (const char *[]){ "arch", "x86_64", "machine", "q35", NULL });
	xmlNodeSetContent(xmlGetLastChild(os), X("hvm"));
	if (img->kernel[0]) {
		el(os, "kernel", img->kernel);
		if (img->initrd[0])
			el(os, "initrd", img->initrd);
		if (img->cmdline[0])
			el(os, "cmdline", img->cmdline);
	} else {
		el_attrs(os, "boot", (const char *[]){ "dev", "hd", NULL });
	}
}

static void put_disk(xmlNodePtr devs, const char *format, const char *path, const char *dev,
		     bool readonly)
{
	xmlNodePtr d = el_attrs(devs, "disk", (const char *[]){ "type", "file", "device", "disk",
								 NULL });

	el_attrs(d, "driver", (const char *[]){ "name", "qemu", "type", format, NULL });
	el_attrs(d, "source", (const char *[]){ "file", path, NULL });
	el_attrs(d, "target", (const char *[]){ "dev", dev, "bus", "virtio", NULL });
	if (readonly)
		el(d, "readonly", NULL);
}

/* QEMU's user-mode netdev as JSON (jansson does the quoting): a virtio NIC
 * on it, and with a forwarded port, tcp ADDR:PORT on the host to the
 * guest's port 22. */
static int put_user_net(xmlNodePtr dom, const struct domxml_params *p)
{
	xmlNsPtr ns = xmlNewNs(dom, X(DOMXML_QEMU_NS), X("qemu"));
	xmlNodePtr cl = xmlNewChild(dom, ns, X("commandline"), NULL);
	json_t *netdev = json_pack("{s:s, s:s, s:b}", "type", "user", "id", "tallynet0",
				   "restrict", !p->guest_outbound);
	json_t *device = json_pack("{s:s, s:s, s:s}", "driver", "virtio-net-pci",
				   "netdev", "tallynet0", "id", "tallynic0");
	char *args[4] = { "-netdev", NULL, "-device", NULL };
	int err = netdev && device ? 0 : TALLY_E_NOMEM;

	if (!err && p->meta.ssh_port) {
		char rule[96];

		if (!p->forward_address || !p->forward_address[0])
			err = TALLY_E_INVALID;
		snprintf(rule, sizeof(rule), "tcp:%s:%u-:22",
			 p->forward_address ? p->forward_address : "", p->meta.ssh_port);
		if (!err && json_object_set_new(netdev, "hostfwd",
						json_pack("[{s:s}]", "str", rule)))
			err = TALLY_E_NOMEM;
	}
	if (!err) {
		args[1] = json_dumps(netdev, JSON_COMPACT | JSON_PRESERVE_ORDER);
		args[3] = json_dumps(device, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (!args[1] || !args[3])
			err = TALLY_E_NOMEM;
	}
	for (int i = 0; !err && i < 4; i++)
		xmlNewProp(xmlNewChild(cl, ns, X("arg"), NULL), X("value"), X(args[i]));
	free(args[1]);
	free(args[3]);
	json_decref(netdev);
	json_decref(device);
	return err;
}

static void put_network(xmlNodePtr devs, enum prov_net_mode net)
{
	if (net == PROV_NET_NAT) {
		xmlNodePtr i = el_attrs(devs, "interface", (const char *[]){ "type", "network",
									     NULL });

		el_attrs(i, "source", (const char *[]){ "network", "default", NULL });
		el_attrs(i, "model", (const char *[]){ "type", "virtio", NULL });
	}
	/* PROV_NET_USER: put_user_net; PROV_NET_NONE: no NIC. */
}

static int put_gpus(xmlNodePtr devs, const struct domxml_lease_meta *m)
{
	for (size_t i = 0; i < m->n_gpus; i++) {
		char dom[8], bus[8], slot[8], fn[8];
		struct pci_addr a;
		xmlNodePtr h, src;

		if (pci_addr_parse(m->gpus[i], &a))
			return TALLY_E_INVALID;
		snprintf(dom, sizeof(dom), "0x%04x", a.domain);
		snprintf(bus, sizeof(bus), "0x%02x", a.bus);
		snprintf(slot, sizeof(slot), "0x%02x", a.slot);
		snprintf(fn, sizeof(fn), "0x%x", a.function);
		h = el_attrs(devs, "hostdev", (const char *[]){ "mode", "subsystem", "type", "pci",
								 "managed", "yes", NULL });
		el_attrs(h, "driver", (const char *[]){ "name", "vfio", NULL });
		src = el(h, "source", NULL);
		el_attrs(src, "address", (const char *[]){ "domain", dom, "bus", bus, "slot", slot,
							   "function", fn, NULL });
	}
	return 0;
}

static void put_console(xmlNodePtr devs, const char *log)
{
	/* A pty keeps an interactive serial console (virsh console) while
	 * virtlogd copies everything the guest prints into the log file. */
	xmlNodePtr s = el_attrs(devs, "serial", (const char *[]){ "type", "pty", NULL });
	xmlNodePtr c;

	el_attrs(s, "log", (const char *[]){ "file", log, "append", "off", NULL });
	el_attrs(s, "target", (const char *[]){ "port", "0", NULL });
	c = el_attrs(devs, "console", (const char *[]){ "type", "pty", NULL });
	el_attrs(c, "target", (const char *[]){ "type", "serial", "port", "0", NULL });
	/* The guest agent's channel (qemu-guest-agent in cloud images). */
	c = el_attrs(devs, "channel", (const char *[]){ "type", "unix", NULL });
	el_attrs(c, "target", (const char *[]){ "type", "virtio", "name",
						"org.qemu.guest_agent.0", NULL });
}

static int put_devices(xmlNodePtr dom, const struct domxml_params *p)
{
	xmlNodePtr devs = el(dom, "devices", NULL);
	int err;

	/* The seed is a read-only virtio disk, not a SATA CD-ROM: Debian's
	 * cloud kernel has virtio but no AHCI driver. */
	if (p->disk_path)
		put_disk(devs, "qcow2", p->disk_path, "vda", false);
	if (p->seed_path)
		put_disk(devs, "raw", p->seed_path, p->disk_path ? "vdb" : "vda", true);
	put_network(devs, p->net);
	err = put_gpus(devs, &p->meta);
	put_console(devs, p->console_log);
	el_attrs(devs, "controller", (const char *[]){ "type", "usb", "model", "none", NULL });
	el_attrs(devs, "memballoon", (const char *[]){ "model", "virtio", NULL });
	if (!err && p->net == PROV_NET_USER)
		err = put_user_net(dom, p);
	return err;
}

static int serialize(xmlDocPtr doc, char **out)
{
	xmlBufferPtr buf = xmlBufferCreate();
	xmlSaveCtxtPtr save = buf ? xmlSaveToBuffer(buf, "UTF-8",
						    XML_SAVE_FORMAT | XML_SAVE_NO_DECL) : NULL;
	long rc;

	*out = NULL;
	if (save) {
		rc = xmlSaveDoc(save, doc);
		if (xmlSaveClose(save) >= 0 && rc >= 0)
			*out = strdup((const char *)xmlBufferContent(buf));
	}
	if (buf)
		xmlBufferFree(buf);
	return *out ? 0 : TALLY_E_NOMEM;
}

int domxml_build(const struct domxml_params *p, char **out)
{
	xmlDocPtr doc = xmlNewDoc(X("1.0"));
	xmlNodePtr dom, feat;
	char uuid[37];
	size_t n = 0;
	int err;

	if (!doc)
		return TALLY_E_NOMEM;
	dom = xmlNewDocNode(doc, NULL, X("domain"), NULL);
	xmlDocSetRootElement(doc, dom);
	xmlNewProp(dom, X("type"), X(p->type == PROV_DOMAIN_KVM ? "kvm" : "qemu"));
	el(dom, "name", p->name);
	for (int i = 0; i < 16; i++)
		n += (size_t)snprintf(uuid + n, sizeof(uuid) - n, "%s%02x",
				      (i == 4 || i == 6 || i == 8 || i == 10) ? "-" : "",
				      p->uuid[i]);
	el(dom, "uuid", uuid);
	put_metadata(dom, &p->meta);
	xmlNewProp(el_u32(dom, "memory", p->memory_mib), X("unit"), X("MiB"));
	xmlNewProp(el_u32(dom, "currentMemory", p->memory_mib), X("unit"), X("MiB"));
	xmlNewProp(el_u32(dom, "vcpu", p->vcpus), X("placement"), X("static"));
	put_os(dom, p->image);
	feat = el(dom, "features", NULL);
	el(feat, "acpi", NULL);
	el(feat, "apic", NULL);
	if (p->type == PROV_DOMAIN_KVM)
		el_attrs(dom, "cpu", (const char *[]){ "mode", "host-passthrough", NULL });
	el(dom, "on_poweroff", "destroy");
	el(dom, "on_reboot", "restart");
	el(dom, "on_crash", "destroy");
	err = put_devices(dom, p);
	if (!err)
		err = serialize(doc, out);
	xmlFreeDoc(doc);
	return err;
}
