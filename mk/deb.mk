# Debian packages, built with Debian's tooling (debhelper, dpkg-buildpackage)
# from debian/:
#
#   make deb         build/deb/: tally_VERSION_ARCH.deb (tallyd, tally, the
#                    commented /etc/tally/tallyd.conf, the systemd unit, man
#                    pages, bash completion) and tallymeter-dkms_VERSION_all.deb
#   make check-deb   installs them in a throwaway debootstrap root and checks
#                    them (tests/deb/check.sh; docs/OPERATING.md)
#
# The build runs in a copy of the source tree (the files git knows, with
# uncommitted changes), so its clean step never touches this tree's build/.

DEB_OUT     := build/deb
DEB_VERSION := $(shell dpkg-parsechangelog -l debian/changelog -S Version 2>/dev/null)
DEB_SRC     := $(DEB_OUT)/src/tally-$(DEB_VERSION)

.PHONY: deb check-deb
deb:
	@rm -rf $(DEB_OUT)/src && mkdir -p $(DEB_SRC)
	@git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C $(DEB_SRC)
	cd $(DEB_SRC) && dpkg-buildpackage -b -us -uc -j2 >../build.log 2>&1 || \
		{ tail -n 40 ../build.log >&2; exit 1; }
	@mv -f $(DEB_OUT)/src/*.deb $(DEB_OUT)/src/*.changes $(DEB_OUT)/src/*.buildinfo $(DEB_OUT)/
	@rm -rf $(DEB_OUT)/src
	@ls -1 $(DEB_OUT)/*.deb

check-deb: deb
	@tests/deb/check.sh $(DEB_OUT)
