# What `cmake --install` puts where, besides the executables (their own
# CMakeLists) and the dashboard (web/CMakeLists.txt): man pages, the systemd
# unit, an example configuration, and the state directory's place.
#
#   ${bindir}/ptescope                   ${sbindir}/ptescoped
#   ${mandir}/man1/ptescope.1            ${mandir}/man8/ptescoped.8
#   ${datadir}/ptescope/web/             the dashboard (--web-root)
#   ${sysconfdir}/ptescope/ptescoped.conf.example
#   /lib/systemd/system/ptescoped.service  (or PTESCOPE_SYSTEMD_UNIT_DIR)
include(GNUInstallDirs)

if(EXISTS ${PROJECT_SOURCE_DIR}/docs/man/ptescoped.8)
	install(FILES ${PROJECT_SOURCE_DIR}/docs/man/ptescoped.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
endif()

# The unit is configured with the install paths (@SBINDIR@, @SYSCONFDIR@, ...).
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

set(SBINDIR ${CMAKE_INSTALL_FULL_SBINDIR})
set(SYSCONFDIR ${CMAKE_INSTALL_FULL_SYSCONFDIR})
set(LOCALSTATEDIR ${CMAKE_INSTALL_FULL_LOCALSTATEDIR})
set(WEBDIR ${CMAKE_INSTALL_FULL_DATADIR}/ptescope/web)
foreach(f ptescoped.service ptescoped.conf.example)
	if(EXISTS ${PROJECT_SOURCE_DIR}/systemd/${f}.in)
		configure_file(${PROJECT_SOURCE_DIR}/systemd/${f}.in ${PROJECT_BINARY_DIR}/systemd/${f} @ONLY)
	elseif(EXISTS ${PROJECT_SOURCE_DIR}/systemd/${f})
		configure_file(${PROJECT_SOURCE_DIR}/systemd/${f} ${PROJECT_BINARY_DIR}/systemd/${f} COPYONLY)
	endif()
endforeach()
if(EXISTS ${PROJECT_BINARY_DIR}/systemd/ptescoped.service)
	install(FILES ${PROJECT_BINARY_DIR}/systemd/ptescoped.service
		DESTINATION ${PTESCOPE_SYSTEMD_UNIT_DIR})
endif()
if(EXISTS ${PROJECT_BINARY_DIR}/systemd/ptescoped.conf.example)
	install(FILES ${PROJECT_BINARY_DIR}/systemd/ptescoped.conf.example
		DESTINATION ${CMAKE_INSTALL_SYSCONFDIR}/ptescope)
endif()
