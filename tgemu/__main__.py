"""``python -m tgemu --port 4430 --control-port 4431 --public-key PATH …``"""

from tgemu.app import main

if __name__ == "__main__":
    main()
