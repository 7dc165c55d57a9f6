# What `cmake --install` puts where, besides the executables (their own
# CMakeLists) and the dashboard (web/CMakeLists.txt): man pages, the systemd
# unit, the configuration (and its example), the operator docs.
#
#   ${bindir}/ptescope                   ${sbindir}/ptescoped
#   ${mandir}/man1/ptescope.1            ${mandir}/man8/ptescoped.8
#   ${datadir}/ptescope/web/             the dashboard (--web-root)
#   ${datadir}/ptescope/prometheus/      recording and alerting rules, their promtool tests,
#                                        an example scrape config (fleet/, docs/fleet.md)
#   ${datadir}/ptescope/grafana/         the Grafana dashboard and its provisioning files
#   ${sysconfdir}/ptescope/ptescoped.conf  (only if absent: upgrades keep it)
#   ${docdir}/examples/ptescoped.conf      the default config of this version
#   ${docdir}/README.md, operations.md, api.md, fleet.md, architecture.md
#   systemd's unit dir/ptescoped.service (prefix /usr), else ${prefix}/lib/systemd/system
include(GNUInstallDirs)

install(FILES ${PROJECT_SOURCE_DIR}/docs/man/ptescoped.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)

set(PTESCOPE_SYSTEMD_UNIT_DIR "" CACHE PATH
    "Where the systemd unit goes (default: systemd's systemdsystemunitdir, else lib/systemd/system)")
if(NOT PTESCOPE_SYSTEMD_UNIT_DIR)
	pkg_get_variable(_unitdir systemd systemdsystemunitdir)
	if(_unitdir AND CMAKE_INSTALL_PREFIX STREQUAL "/usr")
		set(PTESCOPE_SYSTEMD_UNIT_DIR ${_unitdir})
	else()
		set(PTESCOPE_SYSTEMD_UNIT_DIR lib/systemd/system)
	endif()
endif()

# The unit and the config come from systemd/ as written for a /usr install;
# the installed copies get this install's paths (prefix /usr/local: the binary
# in /usr/local/sbin, the config in /usr/local/etc/ptescope) and, when the
# dashboard is built, the config's web-root line enabled.
set(_sbin ${CMAKE_INSTALL_FULL_SBINDIR})
set(_etc ${CMAKE_INSTALL_FULL_SYSCONFDIR}/ptescope)
set(_web ${CMAKE_INSTALL_FULL_DATADIR}/ptescope/web)
set(_doc ${CMAKE_INSTALL_FULL_DOCDIR})
file(READ ${PROJECT_SOURCE_DIR}/systemd/ptescoped.service _unit)
string(REPLACE "/usr/sbin/ptescoped" "${_sbin}/ptescoped" _unit "${_unit}")
string(REPLACE "/etc/ptescope/" "${_etc}/" _unit "${_unit}")
string(REPLACE "file:///usr/share/doc/ptescope/" "file://${_doc}/" _unit "${_unit}")
file(WRITE ${PROJECT_BINARY_DIR}/systemd/ptescoped.service "${_unit}")
install(FILES ${PROJECT_BINARY_DIR}/systemd/ptescoped.service
	DESTINATION ${PTESCOPE_SYSTEMD_UNIT_DIR})
file(READ ${PROJECT_SOURCE_DIR}/systemd/ptescoped.conf _conf)
string(REPLACE "/etc/ptescope/" "${_etc}/" _conf "${_conf}")
if(PTESCOPE_WEB_DIST)
	string(REGEX REPLACE "# *web-root = [^\n]*" "web-root = ${_web}" _conf "${_conf}")
endif()
file(WRITE ${PROJECT_BINARY_DIR}/systemd/ptescoped.conf "${_conf}")
# the example always; the live config only where there is none yet, so
# that an upgrade keeps the administrator's settings
install(FILES ${PROJECT_BINARY_DIR}/systemd/ptescoped.conf
	DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(CODE "
	set(_dst \"\$ENV{DESTDIR}${_etc}/ptescoped.conf\")
	if(EXISTS \"\${_dst}\")
		message(STATUS \"Keeping: \${_dst} (the new default is in ${_doc}/examples)\")
	else()
		file(INSTALL \"${PROJECT_BINARY_DIR}/systemd/ptescoped.conf\"
		     DESTINATION \"${_etc}\" PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
	endif()")

install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/operations.md
	${PROJECT_SOURCE_DIR}/docs/api.md ${PROJECT_SOURCE_DIR}/docs/fleet.md
	${PROJECT_SOURCE_DIR}/docs/architecture.md DESTINATION ${CMAKE_INSTALL_DOCDIR})

# The fleet files (docs/fleet.md): Prometheus rules with their tests and a scrape config,
# the Grafana dashboard with provisioning examples.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/fleet/prometheus ${PROJECT_SOURCE_DIR}/fleet/grafana
	DESTINATION ${CMAKE_INSTALL_DATADIR}/ptescope FILE_PERMISSIONS OWNER_READ OWNER_WRITE
	GROUP_READ WORLD_READ)
