import subprocess
import sys


def test_protocol_and_wire_load_no_io_libraries() -> None:
    code = (
        "import sys, channeld.protocol, channeld.wire\n"
        "loaded = sorted(m for m in ('trio', 'plyvel', 'web3', 'eth_account') if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
