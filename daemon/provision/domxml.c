/* Domain XML for a lease: see domxml.h. */
#include "daemon/provision/domxml.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/codec.h"
#include "lib/errors.h"

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

void xml_put_escaped(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '\'': fputs("&apos;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*s, f);
		}
	}
}

static void put_metadata(FILE *f, const struct domxml_params *p)
{
	char hex[2 * LEASE_ID_LEN + 1];

	hex_encode(p->lease_id, LEASE_ID_LEN, hex);
	fprintf(f, "  <metadata>\n    <%s:lease xmlns:%s=\"%s\" id=\"%s\" image=\"",
		PROV_XMLNS_PREFIX, PROV_XMLNS_PREFIX, PROV_XMLNS, hex);
	xml_put_escaped(f, p->image->name);
	fprintf(f, "\" disk-gib=\"%u\" gpus=\"", p->disk_gib);
	for (size_t i = 0; i < p->n_gpus; i++)
		fprintf(f, "%s%s", i ? " " : "", p->gpus[i]);
	fputs("\"/>\n  </metadata>\n", f);
}

static void put_os(FILE *f, const struct domxml_params *p)
{
	const struct prov_image *img = p->image;

	fputs("  <os>\n    <type arch='x86_64' machine='q35'>hvm</type>\n", f);
	if (img->kernel[0]) {
		fputs("    <kernel>", f);
		xml_put_escaped(f, img->kernel);
		fputs("</kernel>\n", f);
		if (img->initrd[0]) {
			fputs("    <initrd>", f);
			xml_put_escaped(f, img->initrd);
			fputs("</initrd>\n", f);
		}
		if (img->cmdline[0]) {
			fputs("    <cmdline>", f);
			xml_put_escaped(f, img->cmdline);
			fputs("</cmdline>\n", f);
		}
	} else {
		fputs("    <boot dev='hd'/>\n", f);
	}
	fputs("  </os>\n", f);
}

static void put_disks(FILE *f, const struct domxml_params *p)
{
	if (p->disk_path) {
		fputs("    <disk type='file' device='disk'>\n"
		      "      <driver name='qemu' type='qcow2'/>\n      <source file='", f);
		xml_put_escaped(f, p->disk_path);
		fputs("'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n", f);
	}
	if (p->seed_path) {
		fputs("    <disk type='file' device='cdrom'>\n"
		      "      <driver name='qemu' type='raw'/>\n      <source file='", f);
		xml_put_escaped(f, p->seed_path);
		fputs("'/>\n      <target dev='sda' bus='sata'/>\n      <readonly/>\n"
		      "    </disk>\n", f);
	}
}

static void put_network(FILE *f, enum prov_net_mode net)
{
	switch (net) {
	case PROV_NET_NAT:
		fputs("    <interface type='network'>\n      <source network='default'/>\n"
		      "      <model type='virtio'/>\n    </interface>\n", f);
		break;
	case PROV_NET_USER:
		fputs("    <interface type='user'>\n      <model type='virtio'/>\n"
		      "    </interface>\n", f);
		break;
	case PROV_NET_NONE:
		break;
	}
}

static int put_gpus(FILE *f, const struct domxml_params *p)
{
	for (size_t i = 0; i < p->n_gpus; i++) {
		struct pci_addr a;

		if (pci_addr_parse(p->gpus[i], &a))
			return TALLY_E_INVALID;
		fprintf(f, "    <hostdev mode='subsystem' type='pci' managed='yes'>\n"
			"      <driver name='vfio'/>\n      <source>\n"
			"        <address domain='0x%04x' bus='0x%02x' slot='0x%02x' "
			"function='0x%x'/>\n      </source>\n    </hostdev>\n",
			a.domain, a.bus, a.slot, a.function);
	}
	return 0;
}

static void put_console(FILE *f, const char *log)
{
	/* A pty keeps an interactive serial console (virsh console) while
	 * virtlogd copies everything the guest prints into the log file. */
	fputs("    <serial type='pty'>\n      <log file='", f);
	xml_put_escaped(f, log);
	fputs("' append='off'/>\n      <target port='0'/>\n    </serial>\n"
	      "    <console type='pty'>\n      <target type='serial' port='0'/>\n"
	      "    </console>\n", f);
}

int domxml_build(const struct domxml_params *p, char **out)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int err;

	if (!f)
		return TALLY_E_NOMEM;
	fprintf(f, "<domain type='%s'>\n  <name>",
		p->type == PROV_DOMAIN_KVM ? "kvm" : "qemu");
	xml_put_escaped(f, p->name);
	fputs("</name>\n  <uuid>", f);
	for (int i = 0; i < 16; i++)
		fprintf(f, "%s%02x", (i == 4 || i == 6 || i == 8 || i == 10) ? "-" : "",
			p->uuid[i]);
	fputs("</uuid>\n", f);
	put_metadata(f, p);
	fprintf(f, "  <memory unit='MiB'>%u</memory>\n"
		"  <currentMemory unit='MiB'>%u</currentMemory>\n"
		"  <vcpu placement='static'>%u</vcpu>\n",
		p->memory_mib, p->memory_mib, p->vcpus);
	put_os(f, p);
	fputs("  <features>\n    <acpi/>\n    <apic/>\n  </features>\n", f);
	if (p->type == PROV_DOMAIN_KVM)
		fputs("  <cpu mode='host-passthrough'/>\n", f);
	fputs("  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n"
	      "  <on_crash>destroy</on_crash>\n  <devices>\n", f);
	put_disks(f, p);
	put_network(f, p->net);
	err = put_gpus(f, p);
	put_console(f, p->console_log);
	fputs("    <controller type='usb' model='none'/>\n"
	      "    <memballoon model='virtio'/>\n  </devices>\n</domain>\n", f);
	if (fclose(f) != 0 && !err)
		err = TALLY_E_NOMEM;
	if (err) {
		free(buf);
		return err;
	}
	*out = buf;
	return 0;
}

/* The value of attribute name="..." (or '...') in the element's start tag,
 * copied into out[cap]. Attribute names are matched with a leading space so
 * that "id" never matches inside "xmlns:tally". */
static int meta_attr(const char *xml, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	const char *end = strchr(xml, '>');
	const char *s;

	for (s = xml; (s = strstr(s, name)) && (!end || s < end); s += nl) {
		const char *v;
		char quote;
		size_t n;

		if (s == xml || !isspace((unsigned char)s[-1]) || s[nl] != '=')
			continue;
		quote = s[nl + 1];
		if (quote != '"' && quote != '\'')
			return TALLY_E_ENCODING;
		v = s + nl + 2;
		n = strcspn(v, quote == '"' ? "\"" : "'");
		if (v[n] != quote || n >= cap)
			return TALLY_E_ENCODING;
		memcpy(out, v, n);
		out[n] = '\0';
		return 0;
	}
	return TALLY_E_ENCODING;
}

static int meta_gpus(const char *list, struct domxml_lease_meta *m)
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

int domxml_parse_meta(const char *xml, struct domxml_lease_meta *m)
{
	char hex[2 * LEASE_ID_LEN + 2];
	char num[16];
	char gpus[PROV_GPUS_MAX * (PROV_PCI_ADDR_LEN + 1) + 1];
	char *end;
	unsigned long v;

	memset(m, 0, sizeof(*m));
	if (meta_attr(xml, "id", hex, sizeof(hex)) ||
	    hex_decode(hex, m->lease_id, LEASE_ID_LEN))
		return TALLY_E_ENCODING;
	if (meta_attr(xml, "image", m->image, sizeof(m->image)) || !m->image[0])
		return TALLY_E_ENCODING;
	if (meta_attr(xml, "disk-gib", num, sizeof(num)) || !isdigit((unsigned char)num[0]))
		return TALLY_E_ENCODING;
	v = strtoul(num, &end, 10);
	if (*end || v > UINT32_MAX)
		return TALLY_E_ENCODING;
	m->disk_gib = (uint32_t)v;
	if (meta_attr(xml, "gpus", gpus, sizeof(gpus)))
		return TALLY_E_ENCODING;
	return meta_gpus(gpus, m);
}
