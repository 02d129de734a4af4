# The IBKR Client Portal gateway simulator as a service (the offline stand-in for the gateway in compose).
# Only the simulator's code and the pins it imports (versions from constraints.txt).
FROM python:3.11.13-slim-bookworm
WORKDIR /app
COPY constraints.txt ./
RUN pip install --no-cache-dir -c constraints.txt httpx starlette uvicorn pydantic exchange_calendars numpy pandas \
        cryptography
COPY include/__init__.py include/__init__.py
COPY include/ibkr include/ibkr
EXPOSE 5055
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5055/sim/admin/state')"
CMD ["python", "-m", "include.ibkr.simulator", "--host", "0.0.0.0", "--port", "5055"]
