"""The test toolkit every tier shares: free ports (ports.py), polling with a deadline (wait.py), child
processes that die with the test process (pdeathsig.py), the native stack as a fixture (native.py), and
for the unit tier a settable wall clock (clock.py) and a socket-free requests transport (fakehttp.py).

Standard library only except native.py (which imports the harness) and fakehttp.py (requests): scripts/attack and the harness's
launcher import from here too. Import the module you need (`from tests.support.ports import free_port`)."""
