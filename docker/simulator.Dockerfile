# The IBKR Client Portal gateway simulator as a service (stands in for the gateway in compose).
FROM python:3.11-slim
WORKDIR /app
COPY requirements.txt constraints.txt ./
RUN pip install --no-cache-dir httpx==0.28.1 starlette==1.10.0 uvicorn==0.54.0 pydantic==2.14.3 \
        exchange_calendars==4.13.2 numpy==2.4.6 pandas==3.1.1 cryptography==50.0.2 -c constraints.txt
COPY include/__init__.py include/__init__.py
COPY include/ibkr include/ibkr
EXPOSE 5055
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5055/sim/admin/state')"
CMD ["python", "-m", "include.ibkr.simulator", "--host", "0.0.0.0", "--port", "5055"]
